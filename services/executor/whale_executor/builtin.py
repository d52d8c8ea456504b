"""Built-in Python actions (``core.*``), registered in the ``whale.actions`` entry-point group."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from whale_executor.actions.base import ActionContext
from whale_executor.actions.python import action
from whale_executor.errors import ActionFailed


class NoParams(BaseModel):
    pass


class Empty(BaseModel):
    pass


class EchoParams(BaseModel):
    message: Any = Field(description="any JSON value, returned unchanged")


class EchoOutput(BaseModel):
    message: Any


class SleepParams(BaseModel):
    seconds: float = Field(ge=0, le=3600)


class SleepOutput(BaseModel):
    slept: float


class FailParams(BaseModel):
    message: str = "failed on purpose"
    retryable: bool = False


@action(name="core.noop", params=NoParams, output=Empty, idempotent=True, description="Do nothing.")
async def noop(params: NoParams, ctx: ActionContext) -> Empty:
    return Empty()


@action(
    name="core.echo", params=EchoParams, output=EchoOutput, idempotent=True, description="Return the message."
)
async def echo(params: EchoParams, ctx: ActionContext) -> EchoOutput:
    return EchoOutput(message=params.message)


@action(
    name="core.sleep",
    params=SleepParams,
    output=SleepOutput,
    idempotent=True,
    timeout=3600,
    description="Wait some seconds.",
)
async def sleep(params: SleepParams, ctx: ActionContext) -> SleepOutput:
    await asyncio.sleep(params.seconds)
    return SleepOutput(slept=params.seconds)


@action(name="core.fail", params=FailParams, output=Empty, idempotent=True, description="Always fail.")
async def fail(params: FailParams, ctx: ActionContext) -> Empty:
    raise ActionFailed(params.message, retryable=params.retryable)
