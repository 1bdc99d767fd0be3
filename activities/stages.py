"""A birth's stages and the family's notice about each, as one activity and one transaction.

The agency's step and the notification agency's notice stay two ports that know nothing of each other; this
module only runs them back to back inside one registry transaction (`Registry.one_transaction`): the stage's
effect and its notice commit together or not at all, and a retry repeats both idempotently.
`birth_at_once` does so for every stage of a birth (the fast path of a new registration: one local activity, one
activation, one commit); `stage_with_notice` for one stage (the stage-by-stage path it falls back to).
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from temporalio import activity

from activities.common import agency_activity, run_step, timed
from workflows.contracts import (
    BIRTH_AT_ONCE,
    STAGE_STEPS,
    AssignIdInput,
    BirthAtOnce,
    BirthAtOnceInput,
    ChildRef,
    IdAssigned,
    NoticeInput,
    NoticeOutcome,
    RecordBirthInput,
    RecordedBirth,
    ResidenceInput,
    ResidenceOutcome,
    Stage,
    StepDone,
    notice_after,
    with_notice,
)

Notify = Callable[[NoticeInput], Awaitable[NoticeOutcome]]


class StageTransaction(typing.Protocol):
    """Where the two steps share a transaction: `Registry` (`one_transaction`, `between_steps`)."""

    def one_transaction(self) -> AbstractAsyncContextManager[Any]: ...

    async def between_steps(self) -> None: ...


async def step_then_notice(step_name: str, stage: Stage, step: Callable[[Any], Awaitable[Any]], notify: Notify,
                           registry: StageTransaction, inp: Any) -> Any:
    """Inside a shared transaction: `step`, then (when `notice_after` says so) the family's notice, each timed
    under its own name; returns what `step` returned."""
    result = await timed(step_name, step(inp))
    notice = notice_after(stage, inp, result)
    if notice is not None:
        await registry.between_steps()
        await timed("notify_family", notify(notice))
    return result


def stage_with_notice(step_name: str, agency: str, stage: Stage, step: Callable[[Any], Awaitable[Any]],
                      notify: Notify, registry: StageTransaction) -> Callable[..., Any]:
    """The activity `with_notice(step_name)`: `step`, then (when `notice_after` says so) `notify`, in one
    transaction; it returns what `step` returned, with its parameter and return types."""
    hints = typing.get_type_hints(step)
    (_, arg_type), = ((k, v) for k, v in hints.items() if k != "return")

    async def step_and_notice(inp: Any) -> Any:
        async with registry.one_transaction():
            return await step_then_notice(step_name, stage, step, notify, registry, inp)

    step_and_notice.__annotations__ = {"inp": arg_type, "return": hints["return"]}
    return agency_activity(with_notice(step_name), agency, step_and_notice)


StartLifecycle = Callable[[ChildRef], Awaitable[StepDone]]


def birth_at_once(steps: Mapping[str, tuple[str, Callable[[Any], Awaitable[Any]]]], notify: Notify,
                  registry: StageTransaction, start_lifecycle: StartLifecycle) -> Callable[..., Any]:
    """The activity `BIRTH_AT_ONCE`: every stage of a birth, each followed by the family's notice, in ONE
    transaction; then (once every stage is done) the hand-over to the citizen's lifecycle.

    `steps`: step name -> (agency, step), the same ports the stage-by-stage activities run (a failure here is
    reported as the whole step's, without personal data; the stage-by-stage path then names the agency). The fast
    path of a birth: one activation, one marker and one commit instead of seven. It is all or nothing: any failure rolls
    every stage back and the workflow goes stage by stage instead (with each step's retries and the operator's
    repairs), so a failing agency costs one wasted attempt, never a half-done birth. A residence that needs a
    person is not a failure: the stages done are returned, and the school forecast and the hand-over wait."""

    async def stage(name: str, inp: Any) -> Any:
        result = await step_then_notice(name, STAGE_STEPS[name], steps[name][1], notify, registry, inp)
        await registry.between_steps()
        return result

    async def act_on_birth_at_once(inp: BirthAtOnceInput) -> BirthAtOnce:
        # run_step around the stages and the commit: no failure quotes a row into history
        return await timed(BIRTH_AT_ONCE, run_step("birth stages", every_stage(inp)))

    async def every_stage(inp: BirthAtOnceInput) -> BirthAtOnce:
        async with registry.one_transaction():
            recorded: RecordedBirth = await stage("record_birth", RecordBirthInput(
                registration_number=inp.registration_number, workflow_id=inp.workflow_id))
            ref = ChildRef(child_person_id=recorded.child_person_id, workflow_id=inp.workflow_id)
            id_assigned: IdAssigned = await stage("assign_personal_id", AssignIdInput(
                **ref.model_dump(), registration_number=inp.registration_number, province_code=inp.province_code))
            residence: ResidenceOutcome = await stage("register_residence", ResidenceInput(**ref.model_dump()))
            card: StepDone = await stage("issue_child_health_card", ref)
            vaccinations: StepDone = await stage("plan_vaccinations", ref)
            school: StepDone | None = (await stage("add_to_school_forecast", ref)) if residence.registered else None
        lifecycle = None
        if school is not None:  # after the commit: the lifecycle reads what the stages wrote
            lifecycle = await timed("start_citizen_lifecycle", start_lifecycle(ref))
        return BirthAtOnce(recorded=recorded, id_assigned=id_assigned, residence=residence, health_card=card,
                           vaccinations=vaccinations, school=school, lifecycle=lifecycle)

    act_on_birth_at_once.__name__ = act_on_birth_at_once.__qualname__ = BIRTH_AT_ONCE
    return activity.defn(name=BIRTH_AT_ONCE)(act_on_birth_at_once)
