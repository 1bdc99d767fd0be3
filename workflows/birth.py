"""BirthRegistrationWorkflow: one registered birth, every agency acting on it, the family told at each stage.

The history holds only references (registry UUIDs, codes) and outcomes; agencies read names and addresses
from the registry. A step that needs a person (no household on record for the parents) does not fail the
workflow: it sets the `NeedsAttention` search attribute with the reason and waits for an operator's
`supply_household` update.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from infra.search_attributes import (
        ATTENTION_REASON,
        LIFE_EVENT,
        NEEDS_ATTENTION,
        PROVINCE_CODE,
        STAGE,
    )
    from workflows.contracts import (
        BIRTH_AT_ONCE,
        BIRTH_STAGES,
        AssignIdInput,
        BirthAtOnce,
        BirthAtOnceInput,
        BirthCase,
        BirthOutcome,
        ChildRef,
        IdAssigned,
        NoticeInput,
        NoticeOutcome,
        RecordBirthInput,
        RecordedBirth,
        ResidenceInput,
        ResidenceOutcome,
        Stage,
        StageState,
        StepDone,
        SupplyHousehold,
        with_notice,
    )

T = TypeVar("T", bound=BaseModel)

AGENCY_MAX_ATTEMPTS = 10
AGENCY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                           maximum_interval=timedelta(minutes=5), maximum_attempts=AGENCY_MAX_ATTEMPTS)
"""An agency that fails is retried with backoff (about 8 minutes in all); past that the step waits for an
operator's `retry_failed_steps` update instead of failing the registration (the MOSIP rule: a failing agency
never undoes the birth registration)."""

STEP_TIMEOUT = timedelta(seconds=60)
LIFECYCLE_PATCH = "start-citizen-lifecycle"
"""Histories recorded before the hand-over to CitizenLifecycleWorkflow existed replay without it."""
STAGE_PROGRESS_PATCH = "stage-search-attribute"
"""Histories recorded before `Stage` followed the registration's progress replay without those upserts."""
LOCAL_STEPS_PATCH = "local-agency-steps"
"""Registrations started since run their agency steps as local activities (short registry transactions: no
task-queue round trip and three history events fewer per step); histories recorded before replay as activities."""
STAGE_NOTICE_PATCH = "stage-steps-with-notice"
"""Registrations started since run each stage's step and the family's notice about it as one local activity (one
transaction, one activation and one marker per stage instead of two); histories recorded before replay with the
notice as a step of its own. Only with local steps."""
STAGES_AT_ONCE_PATCH = "birth-stages-at-once"
"""Registrations started since first try every stage, each with its notice, and the hand-over in one local activity
and one transaction (`BIRTH_AT_ONCE`); if that fails they go stage by stage as before. Asked first: where it holds,
so do LOCAL_STEPS_PATCH, STAGE_NOTICE_PATCH, LIFECYCLE_PATCH and STAGE_PROGRESS_PATCH, which are not asked (each
asked patch is a marker and a search-attribute upsert in history)."""
AT_ONCE_SUMMARY = "all six stages, each with the family's notice, in one transaction; then the lifecycle"
"""The all-stages step's bar in the Temporal UI; what it leaves undone has bars of its own after it."""
AT_ONCE_RETRY = RetryPolicy(maximum_attempts=1)
"""The all-stages step is not retried: its fallback is the stage-by-stage path, which has the retries."""
LOCAL_RETRY_THRESHOLD = AGENCY_RETRY.initial_interval
"""A local step's first quick retry waits in the worker; every longer backoff is a durable workflow timer, so the
retry budget (`AGENCY_RETRY`) and the wait for an operator after it are the same as for a regular activity."""

STEP_SUMMARIES: dict[str, str] = {
    "record_birth": "civil status: record the registered birth",
    "assign_personal_id": "identity: assign the child's personal ID number",
    "register_residence": "residence: register the child in the parents' household",
    "issue_child_health_card": "health insurance: card for a child under 6",
    "plan_vaccinations": "health: plan the childhood vaccinations",
    "add_to_school_forecast": "education: count the child into the grade-1 forecast",
    "start_citizen_lifecycle": "lifecycle: start the reminders of the years ahead",
}
"""What each step is, as the Temporal UI shows it on the step's bar (no personal data)."""

NOTICE_SUMMARIES: dict[Stage, str] = {
    Stage.BIRTH_RECORDED: "birth recorded",
    Stage.PERSONAL_ID_ASSIGNED: "personal ID number assigned",
    Stage.RESIDENCE_REGISTERED: "residence registered",
    Stage.HEALTH_INSURANCE_ISSUED: "health-insurance card for a child under 6",
    Stage.VACCINATION_PLANNED: "vaccination plan",
    Stage.SCHOOL_FORECAST_ADDED: "counted into school planning",
}


@workflow.defn
class BirthRegistrationWorkflow:
    def __init__(self) -> None:
        self._stages: dict[Stage, StageState] = {s: StageState(stage=s, state="pending") for s in BIRTH_STAGES}
        self._child: uuid.UUID | None = None
        self._residence: ResidenceOutcome | None = None
        self._waiting: dict[str, str] = {}
        """What waits for a person: `residence` or a failed step's key -> machine-readable reason."""
        self._retry_round = 0
        self._supplying = False
        self._stage_shown: str | None = None
        """The value of the `Stage` search attribute as last upserted."""
        self._local_steps = False
        """Decided once at the start of `run` (LOCAL_STEPS_PATCH)."""
        self._notice_in_step = False
        """Decided once at the start of `run` (STAGE_NOTICE_PATCH): a stage's notice goes with its step."""
        self._at_once = False
        """Decided first in `run` (STAGES_AT_ONCE_PATCH); it implies the other patches, which are then not asked."""
        self._done_early: dict[str, BaseModel] = {}
        """Step name -> what it returned inside the all-stages step (STAGES_AT_ONCE_PATCH), taken by `_call`
        instead of running the step again."""

    @workflow.run
    async def run(self, case: BirthCase) -> BirthOutcome:
        wf_id = workflow.info().workflow_id
        self._at_once = self._uses_stages_at_once()
        if self._at_once:  # implies every patch before it: one marker for a new registration instead of five
            self._local_steps = self._notice_in_step = True
        else:
            self._local_steps = self._uses_local_steps()
            self._notice_in_step = self._local_steps and workflow.patched(STAGE_NOTICE_PATCH)
        workflow.upsert_search_attributes([LIFE_EVENT.value_set("birth"),
                                           PROVINCE_CODE.value_set(case.province_code),
                                           NEEDS_ATTENTION.value_set(False)])
        if self._at_once:
            self._done_early = await self._all_stages_at_once(case, wf_id)

        recorded = await self._stage(Stage.BIRTH_RECORDED, lambda: self._call(
            "record_birth", RecordBirthInput(registration_number=case.registration_number, workflow_id=wf_id),
            RecordedBirth, with_its_notice=True))
        child = self._child = recorded.child_person_id
        ref = ChildRef(child_person_id=child, workflow_id=wf_id)
        await self._notify_unless_sent(ref, Stage.BIRTH_RECORDED)

        await self._stage(Stage.PERSONAL_ID_ASSIGNED, lambda: self._call(
            "assign_personal_id",
            AssignIdInput(child_person_id=child, workflow_id=wf_id, registration_number=case.registration_number,
                          province_code=case.province_code), IdAssigned, with_its_notice=True))
        await self._notify_unless_sent(ref, Stage.PERSONAL_ID_ASSIGNED)

        await asyncio.gather(
            self._residence_then_school(ref),
            self._simple_stage(ref, Stage.HEALTH_INSURANCE_ISSUED, "issue_child_health_card"),
            self._simple_stage(ref, Stage.VACCINATION_PLANNED, "plan_vaccinations"),
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._at_once or workflow.patched(LIFECYCLE_PATCH):
            await self._hand_over_to_lifecycle(ref)
        self._stage_shown = "completed"
        workflow.upsert_search_attributes([STAGE.value_set("completed")])
        return BirthOutcome(registration_number=case.registration_number, child_person_id=child,
                            stages=list(self._stages.values()))

    # ---- stages ------------------------------------------------------------------------------------------
    async def _residence_then_school(self, ref: ChildRef) -> None:
        notice_sent = False

        async def register() -> ResidenceOutcome:
            nonlocal notice_sent
            outcome = await self._call("register_residence", ResidenceInput(**ref.model_dump()), ResidenceOutcome,
                                       with_its_notice=True)
            notice_sent = self._notice_in_step and outcome.registered
            if not outcome.registered:
                reason = outcome.attention_reason or "residence-needs-a-decision"
                self._set(Stage.RESIDENCE_REGISTERED, "needs_attention", detail=reason)
                self._wait_for_person("residence", reason)
                await workflow.wait_condition(lambda: self._residence is not None)
                assert self._residence is not None
                outcome = self._residence
            self._residence = outcome
            return outcome

        await self._stage(Stage.RESIDENCE_REGISTERED, register)
        if not notice_sent:  # the household an operator supplied, or a history from before STAGE_NOTICE_PATCH
            await self._notify(ref, Stage.RESIDENCE_REGISTERED)
        await self._simple_stage(ref, Stage.SCHOOL_FORECAST_ADDED, "add_to_school_forecast")

    async def _simple_stage(self, ref: ChildRef, stage: Stage, activity_name: str) -> None:
        done = await self._stage(stage, lambda: self._call(activity_name, ref, StepDone, stage=stage,
                                                           with_its_notice=True))
        if done.applicable:
            await self._notify_unless_sent(ref, stage)
        else:  # nothing was issued (e.g. the child is too old for it): say why, and tell the family nothing false
            self._set(stage, "not_applicable", detail=done.basis)

    async def _hand_over_to_lifecycle(self, ref: ChildRef) -> None:
        """Start the citizen's lifecycle (reminders over the years); it outlives this workflow.

        Started by an activity rather than as a child workflow: the lifecycle is not this registration's child
        (it may already run, started by a dose report or the backfill), and starting it is idempotent.
        """
        await self._call("start_citizen_lifecycle", ref, StepDone)

    async def _all_stages_at_once(self, case: BirthCase, wf_id: str) -> dict[str, BaseModel]:
        """Every stage in one step; what it did is then taken stage by stage, in the usual order, by `_call`.
        Empty when it failed: each step then runs on its own, with its retries and its notice."""
        try:
            done: BirthAtOnce = await workflow.execute_local_activity(
                BIRTH_AT_ONCE, BirthAtOnceInput(registration_number=case.registration_number,
                                                province_code=case.province_code, workflow_id=wf_id),
                result_type=BirthAtOnce, start_to_close_timeout=STEP_TIMEOUT, retry_policy=AT_ONCE_RETRY,
                summary=AT_ONCE_SUMMARY)
        except (ActivityError, ApplicationError) as err:
            cause = err.cause if isinstance(err, ActivityError) else err
            workflow.logger.info("going stage by stage: the all-stages step failed (%s)", type(cause).__name__)
            return {}
        return done.by_step()

    async def _stage(self, stage: Stage, step: Callable[[], Awaitable[T]]) -> T:
        self._set(stage, "running")
        result = await step()
        self._set(stage, "done", detail=getattr(result, "basis", None))
        return result

    async def _notify_unless_sent(self, ref: ChildRef, stage: Stage) -> None:
        if not self._notice_in_step:
            await self._notify(ref, stage)

    async def _notify(self, ref: ChildRef, stage: Stage) -> NoticeOutcome:
        return await self._call("notify_family", NoticeInput(**ref.model_dump(), stage=stage), NoticeOutcome,
                                stage=stage, summary=f"notice to the family: {NOTICE_SUMMARIES[stage]}")

    async def _call(self, activity_name: str, arg: BaseModel, result_type: type[T], *, stage: Stage | None = None,
                    wait_on_failure: bool = True, summary: str | None = None, with_its_notice: bool = False) -> T:
        """Run an agency step; when its retries are spent, wait for an operator instead of failing.

        `with_its_notice`: the step's stage is notified in the same activity (STAGE_NOTICE_PATCH), when the
        step says it happened; a failure is still reported under the step's own name."""
        done_early = self._done_early.pop(activity_name, None)
        if done_early is not None:
            return result_type.model_validate(done_early)
        summary = summary or STEP_SUMMARIES.get(activity_name)
        run_as = activity_name
        if with_its_notice and self._notice_in_step:
            run_as, summary = with_notice(activity_name), f"{summary}; then the notice to the family"
        while True:
            try:
                return await self._execute(run_as, arg, result_type, summary)
            except (ActivityError, ApplicationError) as err:
                # A local step whose last attempt followed a timer backoff fails with the agency's error itself,
                # not wrapped in an ActivityError (temporalio 1.35); both mean the retry budget is spent.
                if not wait_on_failure:
                    raise
                cause = err.cause if isinstance(err, ActivityError) else err
                kind = cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
                reason = f"{activity_name}-failing"
                key = f"{activity_name}/{stage.value if stage else '-'}"
                previous = self._stages[stage] if stage else None
                if stage:
                    self._set(stage, "needs_attention", detail=f"{reason} ({kind})")
                self._wait_for_person(key, reason)
                await self._wait_for_retry_after(self._retry_round)
                self._waiting.pop(key, None)
                self._refresh_attention()
                if stage and previous:
                    self._set(stage, previous.state, detail=previous.detail)

    def _uses_local_steps(self) -> bool:
        return workflow.patched(LOCAL_STEPS_PATCH)

    def _uses_stages_at_once(self) -> bool:
        return workflow.patched(STAGES_AT_ONCE_PATCH)

    async def _execute(self, activity_name: str, arg: BaseModel, result_type: type[T], summary: str | None) -> T:
        result: Any
        if self._local_steps:
            result = await workflow.execute_local_activity(
                activity_name, arg, result_type=result_type, start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=AGENCY_RETRY, local_retry_threshold=LOCAL_RETRY_THRESHOLD, summary=summary)
        else:
            result = await workflow.execute_activity(
                activity_name, arg, result_type=result_type, start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=AGENCY_RETRY, summary=summary)
        return result  # type: ignore[no-any-return]

    def _set(self, stage: Stage, state: str, detail: str | None = None) -> None:
        self._stages[stage] = StageState(stage=stage, state=state, at=workflow.now().isoformat(), detail=detail)
        self._show_stage()

    def _show_stage(self) -> None:
        """Keep the `Stage` search attribute on the stage the registration is at, so operators can search for
        births by stage while they are in flight. Of stages running side by side, one waiting for a person wins,
        else the earliest in the registration's order; upserted only when that changes."""
        if self._done_early:  # stages already done in one step pass by in one activation: show where they end
            return
        open_stages = [s for s in BIRTH_STAGES if self._stages[s].state in ("running", "needs_attention")]
        waiting = [s for s in open_stages if self._stages[s].state == "needs_attention"]
        shown = waiting or open_stages
        if not shown or shown[0].value == self._stage_shown:
            return
        if not self._at_once and not workflow.patched(STAGE_PROGRESS_PATCH):
            return
        self._stage_shown = shown[0].value
        workflow.upsert_search_attributes([STAGE.value_set(shown[0].value)])

    async def _wait_for_retry_after(self, round_seen: int) -> None:
        await workflow.wait_condition(lambda: self._retry_round > round_seen)

    def _wait_for_person(self, key: str, reason: str) -> None:
        self._waiting[key] = reason
        self._refresh_attention()
        workflow.logger.warning("needs attention: %s", reason)

    def _refresh_attention(self) -> None:
        """Mirror what waits for a person into the search attributes and the UI's current details."""
        if self._waiting:
            reason = list(self._waiting.values())[-1]
            workflow.upsert_search_attributes([NEEDS_ATTENTION.value_set(True),
                                               ATTENTION_REASON.value_set(reason)])
            lines = ["**Needs attention**"]
            for key, why in self._waiting.items():
                action = ("send the `supply_household` update with the household id" if key == "residence"
                          else "fix the agency, then send the `retry_failed_steps` update")
                lines.append(f"- {why}: {action}")
            workflow.set_current_details("\n".join(lines))
        else:
            workflow.upsert_search_attributes([NEEDS_ATTENTION.value_set(False), ATTENTION_REASON.value_unset()])
            workflow.set_current_details("")

    # ---- operator and observer API -----------------------------------------------------------------------
    @workflow.update
    async def supply_household(self, request: SupplyHousehold) -> str:
        """Operator supplies the household the child is to be registered in."""
        assert self._child is not None
        self._supplying = True
        try:
            outcome = await self._call(
                "register_residence",
                ResidenceInput(child_person_id=self._child, workflow_id=workflow.info().workflow_id,
                               household_id=request.household_id), ResidenceOutcome, wait_on_failure=False)
        finally:
            self._supplying = False
        if not outcome.registered:
            raise ApplicationError(f"household not accepted: {outcome.attention_reason}", type="InvalidHousehold")
        self._residence = outcome
        self._waiting.pop("residence", None)
        self._refresh_attention()
        return "residence registered"

    @supply_household.validator
    def _validate_supply_household(self, request: SupplyHousehold) -> None:
        if "residence" not in self._waiting:
            raise ValueError("this birth is not waiting for a household")
        if self._supplying:
            raise ValueError("another household is being registered for this birth; wait for its result")

    @workflow.update
    async def retry_failed_steps(self) -> str:
        """Operator: the failing agency is fixed; run the steps that gave up again."""
        failed = [k for k in self._waiting if k != "residence"]
        self._retry_round += 1
        return f"retrying {len(failed)} step(s): {', '.join(failed)}"

    @retry_failed_steps.validator
    def _validate_retry_failed_steps(self) -> None:
        if not any(k != "residence" for k in self._waiting):
            raise ValueError("no failed step is waiting to be retried")

    @workflow.query
    def progress(self) -> list[StageState]:
        return list(self._stages.values())

    @workflow.query
    def attention_reason(self) -> str | None:
        return list(self._waiting.values())[-1] if self._waiting else None
