"""A birth stage and the family's notice about it, as one activity and one transaction.

The agency's step and the notification agency's notice stay two ports that know nothing of each other; this
module only runs them back to back inside one registry transaction (`Registry.one_transaction`): the stage's
effect and its notice commit together or not at all, a retry repeats both idempotently, and a birth costs one
local activity (one workflow activation, one transaction, one history marker) per stage instead of two.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from activities.common import agency_activity, timed
from workflows.contracts import NoticeInput, NoticeOutcome, Stage, notice_after, with_notice

Notify = Callable[[NoticeInput], Awaitable[NoticeOutcome]]


class StageTransaction(typing.Protocol):
    """Where the two steps share a transaction: `Registry` (`one_transaction`, `between_steps`)."""

    def one_transaction(self) -> AbstractAsyncContextManager[Any]: ...

    async def between_steps(self) -> None: ...


def stage_with_notice(step_name: str, agency: str, stage: Stage, step: Callable[[Any], Awaitable[Any]],
                      notify: Notify, registry: StageTransaction) -> Callable[..., Any]:
    """The activity `with_notice(step_name)`: `step`, then (when `notice_after` says so) `notify`, in one
    transaction; it returns what `step` returned, with its parameter and return types."""
    hints = typing.get_type_hints(step)
    (_, arg_type), = ((k, v) for k, v in hints.items() if k != "return")

    async def step_and_notice(inp: Any) -> Any:
        async with registry.one_transaction():  # each part timed under its own step name too
            result = await timed(step_name, step(inp))
            notice = notice_after(stage, inp, result)
            if notice is not None:
                await registry.between_steps()
                await timed("notify_family", notify(notice))
        return result

    step_and_notice.__annotations__ = {"inp": arg_type, "return": hints["return"]}
    return agency_activity(with_notice(step_name), agency, step_and_notice)

