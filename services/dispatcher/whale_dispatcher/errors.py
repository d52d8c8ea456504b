"""Errors of the dispatcher (their place in the tree: :mod:`whale.errors`)."""

from __future__ import annotations

from whale.errors import WhaleError


class DispatcherError(WhaleError, code="dispatcher_error"):
    """Base of the dispatcher's errors."""


class DeliveryFailed(DispatcherError, status=502, code="delivery_failed", retryable=True):
    """A push delivery attempt failed; ``retryable`` says whether another attempt may succeed;
    ``endpoint_status`` is the endpoint's HTTP answer, when there was one."""

    def __init__(self, message: str, *, endpoint_status: int | None = None, retryable: bool = True) -> None:
        super().__init__(message, endpoint_status=endpoint_status, retryable=retryable)
        self.endpoint_status = endpoint_status
