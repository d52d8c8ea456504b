"""Executor errors: one small tree with structured fields; every run error says if it is ``retryable``."""

from __future__ import annotations

from typing import Any

from whale.errors import ConfigError, WhaleError


class CatalogError(ConfigError):
    """An action or workflow definition is invalid (``source`` = file, ``field`` = where inside it)."""

    def __init__(self, message: str, *, source: str = "", field: str | None = None) -> None:
        where = f"{source}: " if source else ""
        where += f"{field}: " if field else ""
        super().__init__(where + message, source=source, field=field)
        self.source = source
        self.field = field
        self.reason = message


class SecretError(WhaleError):
    """A secret reference is malformed or cannot be resolved (the message never holds the value)."""

    def __init__(self, message: str, *, ref: str = "", retryable: bool = False) -> None:
        super().__init__(message, ref=ref)
        self.ref = ref
        self.retryable = retryable


class RunError(WhaleError):
    """An action run did not succeed. ``output`` is what it produced anyway (exit code, response)."""

    result_type = "whale.action.failed"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        output: Any = None,
        problems: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.retryable = retryable
        self.output = output
        self.problems = problems or []

    def as_error(self) -> dict[str, Any]:
        """The ``error`` object of a result event."""
        out: dict[str, Any] = {"message": self.message, "retryable": self.retryable}
        if self.problems:
            out["problems"] = self.problems
        return out


class ActionFailed(RunError):
    """The action ran and failed (non-zero exit, unaccepted HTTP status, exception)."""


class ParamsInvalid(RunError):
    """The request's params do not match the action's schema; ``problems`` names each field."""

    def __init__(self, message: str, problems: list[dict[str, str]]) -> None:
        super().__init__(message, retryable=False, problems=problems)


class ActionTimedOut(RunError):
    """The action did not finish within its timeout (and was killed)."""

    result_type = "whale.action.timed_out"

    def __init__(self, message: str, *, output: Any = None) -> None:
        super().__init__(message, retryable=True, output=output)


class RequestInvalid(RunError):
    """The request event itself is malformed (no target, no idempotency key, unknown action)."""

    def __init__(self, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message, retryable=False, problems=problems)
