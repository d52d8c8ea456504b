"""What the ASGI and WSGI middleware share: their arguments, and taking (or building) the publisher."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from whale.settings import WhaleSettings
from whale_adapters.middleware.mapping import MiddlewareConfig, Router, load_config
from whale_adapters.middleware.publisher import BackgroundPublisher, ProducerFactory

AppT = TypeVar("AppT")


def make_publisher(
    config: MiddlewareConfig | str | Path,
    settings: WhaleSettings | None,
    producer_factory: ProducerFactory | None = None,
) -> BackgroundPublisher:
    """A publisher for a mapping (a YAML file or a :class:`MiddlewareConfig`)."""
    cfg = config if isinstance(config, MiddlewareConfig) else load_config(config)
    return BackgroundPublisher(settings or WhaleSettings(), Router(cfg), producer_factory=producer_factory)


class PublishingMiddleware(Generic[AppT]):
    """Publishes a CloudEvent for each successful call of a mapped route."""

    # the ASGI middleware starts its publisher with the lifespan (or the first request) instead
    start_publisher_at_once: ClassVar[bool] = False

    def __init__(
        self,
        app: AppT,
        config: MiddlewareConfig | str | Path | None = None,
        settings: WhaleSettings | None = None,
        publisher: BackgroundPublisher | None = None,
    ) -> None:
        if publisher is None:
            if config is None:
                raise TypeError(
                    f"{type(self).__name__} needs config= (a file or MiddlewareConfig) or publisher="
                )
            publisher = make_publisher(config, settings)
        self.app = app
        self.publisher = publisher
        self._router = publisher.router
        self._max_body = publisher.config.max_body
        if self.start_publisher_at_once:
            publisher.start()
