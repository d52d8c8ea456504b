"""API middleware: legacy HTTP applications publish CloudEvents by adding one line.

ASGI (FastAPI, Starlette)::

    app.add_middleware(WhaleASGIMiddleware, config="whale-events.yaml")

WSGI (Flask, Django, plain WSGI)::

    app = WhaleWSGIMiddleware(app, config="whale-events.yaml")
"""

from whale_adapters.middleware.asgi import WhaleASGIMiddleware
from whale_adapters.middleware.mapping import MiddlewareConfig, RouteMapping, load_config
from whale_adapters.middleware.publisher import BackgroundPublisher
from whale_adapters.middleware.wsgi import WhaleWSGIMiddleware

__all__ = [
    "BackgroundPublisher",
    "MiddlewareConfig",
    "RouteMapping",
    "WhaleASGIMiddleware",
    "WhaleWSGIMiddleware",
    "load_config",
]
