"""Executor errors (their place in the tree: :mod:`whale.errors`); every run error says if it is
``retryable``."""

from __future__ import annotations

from typing import Any

from whale.errors import ConfigError, Problem, WhaleError


class CatalogError(ConfigError, code="invalid_catalog"):
    """An action or workflow definition is invalid (``source`` = file, ``field`` = where inside it)."""

    def __init__(self, message: str, *, source: str = "", field: str | None = None) -> None:
        where = f"{source}: " if source else ""
        where += f"{field}: " if field else ""
        super().__init__(where + message, field=field, source=source)
        self.source = source
        self.reason = message


class SecretError(WhaleError, code="secret_error"):
    """A secret reference is malformed or cannot be resolved (the message never holds the value)."""

    def __init__(self, message: str, *, ref: str = "", retryable: bool = False) -> None:
        super().__init__(message, ref=ref, retryable=retryable)
        self.ref = ref


class RunError(WhaleError, code="run_failed"):
    """An action run did not succeed. ``output`` is what it produced anyway (exit code, response)."""

    result_type = "whale.action.failed"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        output: Any = None,
        problems: list[Problem] | None = None,
    ) -> None:
        super().__init__(message, problems, retryable=retryable)
        self.output = output

    def as_error(self) -> dict[str, Any]:
        """The ``error`` object of a result event."""
        out: dict[str, Any] = {"message": self.message, "retryable": self.retryable}
        if self.problems:
            out["problems"] = self.problems
        return out


class ActionFailed(RunError, code="action_failed"):
    """The action ran and failed (non-zero exit, unaccepted HTTP status, exception)."""


class ParamsInvalid(RunError, status=400, code="invalid_params"):
    """The request's params do not match the action's schema; ``problems`` names each field."""

    def __init__(self, message: str, problems: list[Problem]) -> None:
        super().__init__(message, retryable=False, problems=problems)


class ActionTimedOut(RunError, status=504, code="timed_out", retryable=True):
    """The action did not finish within its timeout (and was killed)."""

    result_type = "whale.action.timed_out"

    def __init__(self, message: str, *, output: Any = None) -> None:
        super().__init__(message, retryable=True, output=output)


class RequestInvalid(RunError, status=400, code="invalid_request"):
    """The request event itself is malformed (no target, no idempotency key, unknown action)."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message, retryable=False, problems=problems)
