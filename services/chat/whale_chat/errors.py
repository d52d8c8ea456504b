"""Errors of the chat adapter (their place in the tree: :mod:`whale.errors`)."""

from __future__ import annotations

from whale.errors import WhaleError


class ChatError(WhaleError, code="chat_error"):
    """Base of the errors the chat adapter raises on purpose."""


class BadSignature(ChatError, status=401, code="unauthenticated"):
    """A callback's signature is missing or wrong, its timestamp stale, or it was seen already (401)."""


class NotConfigured(ChatError, status=404, code="not_found"):
    """The platform has no credentials configured here (404: the route does not exist for it)."""


class BadCallback(ChatError, status=400, code="invalid_request"):
    """A verified callback the adapter cannot read (not the platform's documented shape)."""
