"""Python actions: an async function with a pydantic params model and an output model.

Register one with :func:`action` and expose it through the ``whale.actions`` entry-point group
(the entry point names a :class:`PythonAction` or a module holding some), a module path in the
executor's settings, or a ``kind: python`` YAML file naming ``callable: package.module:attribute``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterator
from types import ModuleType
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from whale.errors import WhaleError
from whale_executor.actions.base import ActionContext
from whale_executor.errors import CatalogError, ParamsInvalid, RunError

P = TypeVar("P", bound=BaseModel)
O = TypeVar("O", bound=BaseModel)  # noqa: E741


class PythonAction(Generic[P, O]):
    """A Python function behind the :class:`~whale_executor.actions.base.Action` interface."""

    kind = "python"

    def __init__(
        self,
        fn: Callable[[P, ActionContext], Awaitable[O]],
        *,
        name: str,
        params: type[P],
        output: type[O],
        description: str = "",
        idempotent: bool = False,
        timeout: float = 60.0,
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise CatalogError("a Python action must be an async function", source=name)
        self.fn = fn
        self.name = name
        self.params_model = params
        self.output_model = output
        self.description = description or (inspect.getdoc(fn) or "").split("\n", 1)[0]
        self.idempotent = idempotent
        self.timeout = timeout

    @property
    def params_schema(self) -> dict[str, Any]:
        return self.params_model.model_json_schema()

    def validate(self, params: Any) -> P:
        try:
            return self.params_model.model_validate(params if params is not None else {})
        except ValidationError as exc:
            problems = [
                {"field": ".".join(str(p) for p in err["loc"]) or "params", "message": err["msg"]}
                for err in exc.errors()
            ]
            text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise ParamsInvalid(f"invalid params: {text}", problems) from None

    async def run(self, params: Any, ctx: ActionContext) -> Any:
        try:
            result = await self.fn(params, ctx)
        except RunError:
            raise
        except Exception as exc:
            retryable = isinstance(exc, WhaleError) and exc.retryable
            raise RunError(f"{type(exc).__name__}: {exc}", retryable=retryable) from exc
        if not isinstance(result, self.output_model):
            try:
                result = self.output_model.model_validate(result)
            except ValidationError as exc:
                raise RunError(f"action returned an invalid output: {exc.errors()[0]['msg']}") from None
        return result.model_dump(mode="json")


def action(
    *,
    name: str,
    params: type[P],
    output: type[O],
    description: str = "",
    idempotent: bool = False,
    timeout: float = 60.0,
) -> Callable[[Callable[[P, ActionContext], Awaitable[O]]], PythonAction[P, O]]:
    """Decorator: turn an ``async def fn(params, ctx) -> Output`` into a :class:`PythonAction`."""

    def wrap(fn: Callable[[P, ActionContext], Awaitable[O]]) -> PythonAction[P, O]:
        return PythonAction(
            fn,
            name=name,
            params=params,
            output=output,
            description=description,
            idempotent=idempotent,
            timeout=timeout,
        )

    return wrap


def actions_in(obj: Any) -> Iterator[PythonAction[Any, Any]]:
    """The Python actions an entry point or module path designates (one action or a module of them)."""
    if isinstance(obj, PythonAction):
        yield obj
    elif isinstance(obj, ModuleType):
        for value in vars(obj).values():
            if isinstance(value, PythonAction):
                yield value


def load_path(path: str, *, source: str = "") -> Any:
    """Import ``package.module`` or ``package.module:attribute``."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CatalogError(f"cannot import {module_name!r}: {exc}", source=source or path) from None
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise CatalogError(
            f"module {module_name!r} has no attribute {attr!r}", source=source or path
        ) from None
