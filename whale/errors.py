"""Whale's one error contract: every error raised on purpose is a :class:`WhaleError`.

Each carries structured fields, declared once here on the base:

* ``code``: a stable machine string (``"invalid_event"``), the ``error`` of an HTTP body;
* ``status``: the HTTP status an API answers with when the error reaches it;
* ``retryable``: whether trying the same thing again may succeed (consumers retry, then
  dead-letter; executors report it in the result event);
* ``field``: what is wrong, when one thing is (``data.value``, ``subscriptions.0.endpoint``);
* ``problems``: every ``{"field", "message"}`` found (a single ``field`` becomes one problem).

A subclass sets its class defaults as class keywords
(``class NotFound(EventCenterError, status=404, code="not_found")``); ``retryable`` may also be
given per instance. ``whale.web.errors`` turns any of them into the one HTTP error body
``{"error": code, "message", "problems", "retryable"}``.

The tree (library, then each service's ``errors.py``; the rule language's modules (``whale.rules``)
and ``subscriptions`` define theirs beside the code that raises them)::

    WhaleError                              500 internal_error
    ├── ConfigError                         400 invalid_config
    │   ├── whale.rules.model.RuleError     400 invalid_rule
    │   ├── whale.rules.operators.MatchError  400 invalid_match
    │   ├── whale.rules.regex.RegexError    400 invalid_config (a pattern RE2 refuses)
    │   ├── whale.subscriptions.SubscriptionError  400 invalid_subscription
    │   ├── whale.inventory.InventoryError  400 invalid_inventory
    │   ├── whale_executor.CatalogError     400 invalid_catalog
    │   └── whale.jsonpath.MappingError     400 invalid_mapping (also whale_adapters.MappingError)
    ├── InfraError                          500 infra_error
    ├── whale.inventory_http.SourceError    502 source_failed (retryable: an inventory HTTP source poll)
    ├── EventError                          400 invalid_event
    │   ├── BindingError                    400 unreadable_event
    │   └── whale_adapters.PayloadError     422 invalid_payload
    │       └── BodyError                   400 invalid_request (not usable JSON, nested too deeply)
    ├── DeliveryError                       503 unavailable (retryable)
    │   └── MessageTooLarge                 413 too_large (Kafka's size limit: permanent)
    ├── TopicError                          500 topic_mismatch
    ├── InvalidRequest                      400 invalid_request (an HTTP request's parameters or body)
    ├── whale.authz.AuthError               401 unauthenticated
    │   ├── NotAuthenticated                401 unauthenticated (no, unknown, expired, revoked credentials)
    │   └── NotPermitted                    403 forbidden (the identity lacks the route's role)
    ├── whale.rules.templating.TemplateError  400 invalid_template
    │   └── TemplateLimitError              400 invalid_template (a sandbox limit: time, steps, size, regex)
    ├── whale_event_center.EventCenterError 500 internal_error
    │   ├── InvalidEvent                    400 invalid_event
    │   ├── InvalidSchema                   400 invalid_schema
    │   ├── InvalidRule                     400 invalid_rule     (rules_api)
    │   ├── InvalidSubscription             400 invalid_subscription (subscriptions_api)
    │   ├── InvalidToken                    400 invalid_token (tokens_api)
    │   ├── Unauthenticated                 401 unauthenticated
    │   ├── Forbidden                       403 forbidden
    │   ├── NotFound                        404 not_found
    │   ├── IncompatibleSchema              409 incompatible_schema
    │   ├── AlreadyResolved                 409 resolved
    │   ├── Conflict                        409 conflict (the resource's state forbids the change)
    │   ├── VersionMismatch                 412 version_mismatch (rules_api)
    │   ├── NotWritten                      424 not_written (a valid member of a refused batch)
    │   ├── TooLarge                        413 too_large
    │   ├── UnsupportedMediaType            415 unsupported_media_type
    │   ├── Saturated                       429 saturated (retryable)
    │   └── Unavailable                     503 unavailable (retryable)
    ├── whale.es.store.StoreUnavailable   503 unavailable (retryable: Elasticsearch)
    ├── whale_executor.SecretError          500 secret_error
    ├── whale_executor.RunError             500 run_failed
    │   ├── ActionFailed                    500 action_failed
    │   ├── ParamsInvalid                   400 invalid_params
    │   ├── ActionTimedOut                  504 timed_out (retryable)
    │   └── RequestInvalid                  400 invalid_request
    ├── whale_adapters.AdapterError         500 adapter_error
    │   ├── SignatureError                  401 unauthenticated
    │   ├── TokenRefused                    401 unauthenticated
    │   ├── NoSuchWebhook                   404 not_found
    │   └── BodyTooLarge                    413 too_large
    ├── whale_dispatcher.DispatcherError    500 dispatcher_error
    │   └── DeliveryFailed                  502 delivery_failed (retryable unless told)
    ├── whale_chat.ChatError                500 chat_error
    │   ├── BadCallback                     400 invalid_request (a verified callback it cannot read)
    │   ├── BadSignature                    401 unauthenticated (bad or stale signature, a replay)
    │   └── NotConfigured                   404 not_found (a platform without credentials)
    ├── whale_rule_engine.RuleEngineError   500 rule_engine_error
    │   ├── RenderFailed                    400 render_failed
    │   └── BacktestError                   500 backtest_failed
    └── whale_console.ConsoleError          500 console_error
        ├── NotSignedIn                     401 unauthenticated (no or expired session: the sign-in page)
        ├── CsrfRejected                    403 csrf_rejected
        ├── ApiUnreachable                  502 api_unreachable (retryable)
        └── ApiRefused                      502 api_refused (the event center's own status is kept)
"""

from __future__ import annotations

from typing import Any, ClassVar

Problem = dict[str, str]


class WhaleError(Exception):
    """Base of every error Whale raises on purpose. ``str()`` is a message a person understands."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    retryable: bool = False

    def __init_subclass__(
        cls,
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if status is not None:
            cls.status = status
        if retryable is not None:
            cls.retryable = retryable

    def __init__(
        self,
        message: str,
        problems: list[Problem] | None = None,
        *,
        field: str | None = None,
        retryable: bool | None = None,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.problems: list[Problem] = problems or ([{"field": field, "message": message}] if field else [])
        if retryable is not None:
            self.retryable = retryable
        self.headers: dict[str, str] = headers or {}
        self.fields: dict[str, Any] = {**fields, "field": field} if field is not None else fields

    def __str__(self) -> str:
        return self.message

    def body(self) -> dict[str, Any]:
        """The HTTP error body: ``{"error": code, "message", "problems", "retryable"}``."""
        return {
            "error": self.code,
            "message": self.message,
            "problems": self.problems,
            "retryable": self.retryable,
        }


class ConfigError(WhaleError, status=400, code="invalid_config"):
    """A configuration file or setting is malformed (``field`` names what, ``source`` where)."""


class InfraError(WhaleError, code="infra_error"):
    """The local Kafka/Elasticsearch stack could not be fetched, started or stopped."""


class EventError(WhaleError, status=400, code="invalid_event"):
    """A CloudEvent is invalid. ``problems`` lists ``{"field": ..., "message": ...}`` entries."""


class BindingError(EventError, code="unreadable_event"):
    """A Kafka message cannot be read as a CloudEvent (poison message)."""


class DeliveryError(WhaleError, status=503, code="unavailable", retryable=True):
    """Kafka did not acknowledge a write (the event was not durably stored)."""

    def __init__(self, message: str, *, event_id: str | None = None, retryable: bool = True) -> None:
        super().__init__(message, event_id=event_id, retryable=retryable)
        self.event_id = event_id


class MessageTooLarge(DeliveryError, status=413, code="too_large", retryable=False):
    """The message exceeds what Kafka takes (producer ``message.max.bytes`` or the topic's
    ``max.message.bytes``): a permanent error, answered 413, never retried."""

    def __init__(self, message: str, *, limit: int, event_id: str | None = None) -> None:
        super().__init__(message, event_id=event_id, retryable=False)
        self.limit = limit


class TopicError(WhaleError, code="topic_mismatch"):
    """A topic exists with a configuration that contradicts the topic contract."""


class InvalidRequest(WhaleError, status=400, code="invalid_request"):
    """An HTTP request's parameters or body break the API's declared schema (one problem per field)."""
