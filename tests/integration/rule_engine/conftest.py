"""Rule-engine integration fixtures: each test gets its own Faust app id (consumer group and
internal topics), its own pool (actions topic) and its own event types."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from whale import topics
from whale.admin import ensure_topics
from whale.binding import KafkaMessage
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.testing import Tap

from .re_helpers import Scope, Worker


@pytest.fixture(scope="session")
def re_settings(stack: WhaleSettings) -> WhaleSettings:
    """The suite's stack, with the topic contract in place."""
    ensure_topics(stack)
    return stack


@pytest.fixture
def scope(re_settings: WhaleSettings) -> Iterator[Scope]:
    """Unique names; afterwards the test's pool topic and its Faust app's internal topics are deleted."""
    tag = uuid.uuid4().hex[:10]
    pool = f"ret-{tag}"
    ensure_topics(re_settings, [topics.pool_topic_spec(pool)])
    made = Scope(tag=tag, app_id=f"whale-re-test-{tag}", pool=pool, type=f"test.re.{tag}.alert")
    yield made
    admin = AdminClient(re_settings.kafka_config())
    names = [n for n in admin.list_topics(timeout=30).topics if n.startswith(made.app_id)]
    admin.delete_topics([made.actions_topic, *names])


@pytest.fixture
def tap(re_settings: WhaleSettings) -> Iterator[Callable[[str, Callable[[KafkaMessage], bool]], Tap]]:
    opened: list[Tap] = []

    def open_tap(topic: str, keep: Callable[[KafkaMessage], bool]) -> Tap:
        t = Tap(re_settings, topic, keep_message=keep)
        opened.append(t)
        return t

    yield open_tap
    for t in opened:
        t.close()


@pytest.fixture
def workers(re_settings: WhaleSettings, scope: Scope, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(
        app_id: str, rules_dir: Path | None = None, *, name: str = "worker", env: dict[str, str] | None = None
    ) -> Worker:
        w = Worker(re_settings, app_id, rules_dir, tmp_path / f"{name}-{len(started)}.log", env)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture
def producer(re_settings: WhaleSettings) -> Iterator[EventProducer]:
    p = EventProducer(re_settings)
    yield p
    p.close()
