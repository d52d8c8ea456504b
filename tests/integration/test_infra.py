"""The local stack really works: idempotent ``up``, status, Kafka for both client libraries, Elasticsearch.

Uses the session ``stack`` fixture (``whale.infra.stack.up``); every name carries ``unique`` because the
broker and the node are shared with the rest of the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from elasticsearch import Elasticsearch

from whale.cli import main
from whale.infra import stack as infra
from whale.settings import WhaleSettings

pytestmark = pytest.mark.integration

FAUST_APP = textwrap.dedent(
    """
    import os, signal, sys
    import faust

    uid, result = os.environ["PROBE_ID"], os.environ["PROBE_RESULT"]
    app = faust.App(
        f"whale-probe-{uid}",
        broker=f"kafka://{os.environ['PROBE_BOOTSTRAP']}",
        store="memory://",
        datadir=os.environ["PROBE_DATADIR"],
        web_enabled=False,
        topic_partitions=1,
        topic_replication_factor=1,
    )
    source = app.topic(f"probe-in-{uid}", value_type=str)
    sink = app.topic(f"probe-out-{uid}", value_type=str)
    counts = app.Table(f"counts-{uid}", default=int, partitions=1)
    seen = []

    @app.agent(source)
    async def count(stream):
        async for word in stream:
            counts[word] += 1
            await sink.send(value=f"{word}:{counts[word]}")

    @app.agent(sink)
    async def collect(stream):
        async for value in stream:
            seen.append(value)
            if len(seen) == 2:
                with open(result, "w") as out:
                    out.write(",".join(seen))
                os.kill(os.getpid(), signal.SIGTERM)

    @app.task
    async def feed():
        await source.send(value="whale")
        await source.send(value="whale")

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()
    """
)


def _create_topics(settings: WhaleSettings, *names: str) -> None:
    admin = AdminClient(settings.kafka_config())
    for future in admin.create_topics(
        [NewTopic(name, num_partitions=1, replication_factor=1) for name in names]
    ).values():
        future.result(30)


def test_up_again_starts_nothing_and_status_reports_both_components(stack: WhaleSettings) -> None:
    again = infra.up(WhaleSettings())
    assert again.started == ()
    assert again.usable
    status = infra.status(WhaleSettings())
    assert {c.name: c.address for c in status.components} == {
        "kafka": stack.kafka_bootstrap,
        "elasticsearch": stack.es_url,
    }
    assert all(c.state in (infra.RUNNING, infra.EXTERNAL) for c in status.components)


def test_whale_infra_status_command_prints_both_and_exits_0(
    stack: WhaleSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["infra", "status"]) == 0
    out = capsys.readouterr().out
    assert "kafka" in out and "elasticsearch" in out


def test_kafka_answers_metadata_and_round_trips_with_confluent_kafka(
    stack: WhaleSettings, unique: str
) -> None:
    metadata = AdminClient(stack.kafka_config()).list_topics(timeout=30)
    assert metadata.brokers
    topic = f"test.infra.ck.{unique}"
    _create_topics(stack, topic)
    producer = Producer(stack.kafka_config())
    producer.produce(topic, key=b"k", value=b"hello whale")
    assert producer.flush(30) == 0
    consumer = Consumer({**stack.kafka_config(), "group.id": f"g-{unique}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        message = None
        while message is None or message.error():
            message = consumer.poll(1.0)
    finally:
        consumer.close()
    assert message.value() == b"hello whale"


def test_a_faust_agent_with_a_table_consumes_and_produces(
    stack: WhaleSettings, unique: str, tmp_path: Path
) -> None:
    _create_topics(stack, f"probe-in-{unique}", f"probe-out-{unique}")
    script = tmp_path / "probe_app.py"
    script.write_text(FAUST_APP)
    result = tmp_path / "result.txt"
    env = {
        **os.environ,
        "PROBE_ID": unique,
        "PROBE_RESULT": str(result),
        "PROBE_BOOTSTRAP": stack.kafka_bootstrap,
        "PROBE_DATADIR": str(tmp_path / "faust"),
    }
    try:
        proc = subprocess.run(
            [sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the Faust worker did not finish; output:\n{exc.output}")
    assert result.exists(), (
        f"exit code {proc.returncode}; output:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    assert result.read_text() == "whale:1,whale:2"


def test_elasticsearch_indexes_and_searches_with_the_official_client(
    stack: WhaleSettings, unique: str
) -> None:
    auth = (stack.es_username, stack.es_password or "") if stack.es_username else None
    es = Elasticsearch(stack.es_url, basic_auth=auth)
    index = f"whale-test-infra-{unique}"
    try:
        es.index(
            index=index,
            id="1",
            document={"type": "whale.test", "text": "the whale surfaces"},
            refresh="wait_for",
        )
        found = es.search(index=index, query={"match": {"text": "whale"}})
        hits = found["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["1"]
        assert hits[0]["_source"]["type"] == "whale.test"
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
        es.close()


def test_the_suite_never_uses_the_stack_or_data_that_make_run_uses(stack: WhaleSettings) -> None:
    """`make test` then `make run` shows none of the suite's data: other ports, another data directory."""
    from whale.infra.settings import InfraSettings

    defaults = {name: field.default for name, field in InfraSettings.model_fields.items()}
    here = InfraSettings()
    status = infra.status(WhaleSettings())
    for component in status.components:
        if component.state == infra.EXTERNAL:
            continue  # the user pointed the suite at their own cluster
        assert component.address in (stack.kafka_bootstrap, stack.es_url)
    assert (here.kafka_port, here.es_port) != (defaults["kafka_port"], defaults["es_port"])
    assert here.resolved_data_dir(stack) != (stack.cache_dir / "data").expanduser().absolute()
