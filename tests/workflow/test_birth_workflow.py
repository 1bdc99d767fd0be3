"""BirthRegistrationWorkflow on the time-skipping test server, with fake agencies (see conftest.py)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.common import TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from infra.search_attributes import ATTENTION_REASON, LIFE_EVENT, NEEDS_ATTENTION, PROVINCE_CODE, STAGE
from tests.helpers import HISTORIES, encryption_key_ids, eventually, payload_texts, save_history_if_requested
from worker import WORKFLOWS
from workflows.birth import AGENCY_MAX_ATTEMPTS, BirthRegistrationWorkflow, SupplyHousehold
from workflows.contracts import (
    AssignIdInput,
    BirthCase,
    BirthOutcome,
    ChildRef,
    ResidenceInput,
    Stage,
    StageState,
    with_notice,
)

from .conftest import (
    CHILD_ID_NUMBER,
    CHILD_NAME,
    DATE_OF_BIRTH,
    HOME_ADDRESS,
    MOTHER_NAME,
    PARALLEL_ACTIVITIES,
    PERSONAL_STRINGS,
    STEP_KINDS,
    TEST_CODEC,
    TEST_CONVERTER,
    Births,
    FakeAgencies,
)

COMMITTED_HISTORIES = ("birth_happy_path", "birth_needs_attention", "birth_lifecycle_handover",
                       "lifecycle_dose_reported", "death_registration", "move_workflow", "correction_workflow",
                       "school_plan", "birth_local_steps", "lifecycle_local_steps", "birth_stage_notices",
                       "birth_stages_at_once")

STAGE_ACTIVITY = {
    Stage.BIRTH_RECORDED: "record_birth",
    Stage.PERSONAL_ID_ASSIGNED: "assign_personal_id",
    Stage.RESIDENCE_REGISTERED: "register_residence",
    Stage.HEALTH_INSURANCE_ISSUED: "issue_child_health_card",
    Stage.VACCINATION_PLANNED: "plan_vaccinations",
    Stage.SCHOOL_FORECAST_ADDED: "add_to_school_forecast",
}


# ---- helpers -------------------------------------------------------------------------------------------------

async def search_attributes(handle: WorkflowHandle[Any, Any]) -> TypedSearchAttributes:
    return (await handle.describe()).typed_search_attributes


def states(stages: list[StageState]) -> dict[Stage, str]:
    return {s.stage: s.state for s in stages}


def assert_all_done(outcome: BirthOutcome, agencies: FakeAgencies) -> None:
    assert outcome.registration_number == agencies.registration_number
    assert outcome.child_person_id == agencies.child_id
    assert [s.stage for s in outcome.stages] == list(Stage)
    assert states(outcome.stages) == dict.fromkeys(Stage, "done")
    assert all(s.at is not None for s in outcome.stages)


async def wait_for_attention(handle: WorkflowHandle[BirthRegistrationWorkflow, BirthOutcome],
                             reason: str) -> None:
    """Wait until the workflow flags itself, the other stages have finished, and no activity is in flight."""
    attrs = await eventually(lambda: search_attributes(handle),
                             lambda sa: sa.get(NEEDS_ATTENTION) is True, what="NeedsAttention=True")
    assert attrs.get(ATTENTION_REASON) == reason
    progress = await eventually(
        lambda: handle.query(BirthRegistrationWorkflow.progress),
        lambda p: states(p)[Stage.HEALTH_INSURANCE_ISSUED] == states(p)[Stage.VACCINATION_PLANNED] == "done",
        what="insurance and vaccination done while residence waits")
    assert states(progress) == {
        Stage.BIRTH_RECORDED: "done", Stage.PERSONAL_ID_ASSIGNED: "done",
        Stage.RESIDENCE_REGISTERED: "needs_attention", Stage.HEALTH_INSURANCE_ISSUED: "done",
        Stage.VACCINATION_PLANNED: "done", Stage.SCHOOL_FORECAST_ADDED: "pending"}
    assert {s.stage: s.detail for s in progress}[Stage.RESIDENCE_REGISTERED] == reason
    await eventually(handle.describe, lambda d: not d.raw_description.pending_activities,
                     what="no activity in flight (notices of the finished stages sent)")


def replayer() -> Replayer:
    return Replayer(workflows=WORKFLOWS, data_converter=TEST_CONVERTER)  # every workflow type; decrypts


# ---- 1. happy path ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("step_kind", STEP_KINDS, indirect=True)
async def test_happy_path_runs_every_stage_in_order_and_notifies_once_per_stage(
        agencies: FakeAgencies, births: Births) -> None:
    agencies.require_parallel = True  # residence, insurance and vaccination each wait for the other two
    handle = await births.start()

    outcome = await handle.result()

    assert_all_done(outcome, agencies)
    trace = [(c.phase, c.name, c.stage) for c in agencies.calls]
    assert trace[:8] == [
        ("start", "record_birth", None), ("end", "record_birth", None),
        ("start", "notify_family", Stage.BIRTH_RECORDED), ("end", "notify_family", Stage.BIRTH_RECORDED),
        ("start", "assign_personal_id", None), ("end", "assign_personal_id", None),
        ("start", "notify_family", Stage.PERSONAL_ID_ASSIGNED),
        ("end", "notify_family", Stage.PERSONAL_ID_ASSIGNED),
    ]
    # six agency steps, six notices and the hand-over to the lifecycle, each started and finished once
    assert len(trace) == 2 * (6 + 6 + 1)
    assert trace[-2:] == [("start", "start_citizen_lifecycle", None), ("end", "start_citizen_lifecycle", None)]
    assert agencies.lifecycles_started == {agencies.child_id}

    # residence, insurance and vaccination overlap: all three started before any of them finished
    assert (max(agencies.index("start", name) for name in PARALLEL_ACTIVITIES)
            < min(agencies.index("end", name) for name in PARALLEL_ACTIVITIES))
    # school forecast only once the residence is registered (and the family told)
    school = agencies.index("start", "add_to_school_forecast")
    assert agencies.index("end", "register_residence") < school
    assert agencies.index("end", "notify_family", Stage.RESIDENCE_REGISTERED) < school
    # each notice follows its own stage, exactly once per stage
    assert Counter(agencies.notified_stages()) == Counter(Stage)
    for stage, activity_name in STAGE_ACTIVITY.items():
        assert agencies.index("end", activity_name) < agencies.index("start", "notify_family", stage), stage

    # every step acts on the recorded child on behalf of this workflow
    for call in agencies.calls:
        if call.phase == "start" and isinstance(call.arg, ChildRef):
            assert (call.arg.child_person_id, call.arg.workflow_id) == (agencies.child_id, handle.id), call
    assign = agencies.started("assign_personal_id")[0].arg
    assert isinstance(assign, AssignIdInput)
    assert (assign.registration_number, assign.province_code) == (agencies.registration_number, "79")
    residence = agencies.started("register_residence")[0].arg
    assert isinstance(residence, ResidenceInput) and residence.household_id is None

    attrs = await search_attributes(handle)
    assert attrs.get(LIFE_EVENT) == "birth"
    assert attrs.get(PROVINCE_CODE) == "79"
    assert attrs.get(NEEDS_ATTENTION) is False
    assert attrs.get(ATTENTION_REASON) is None
    assert attrs.get(STAGE) == "completed"


# ---- 2. references in history, data in the registry -------------------------------------------------------------

async def test_history_holds_references_not_personal_data(
        agencies: FakeAgencies, births: Births) -> None:
    handle = await births.start()
    await handle.result()

    # the fakes really did handle the personal data (else its absence below would prove nothing)
    notices = "\n".join(agencies.outbox.values())
    for used in (MOTHER_NAME, CHILD_NAME, CHILD_ID_NUMBER, HOME_ADDRESS, DATE_OF_BIRTH):
        assert used in notices
    assert len(agencies.outbox) == 6

    history = await handle.fetch_history()
    raw = history.to_json()
    assert "workflow-tests" in encryption_key_ids(json.loads(raw))  # stored encrypted
    payloads = payload_texts(json.loads(raw), TEST_CODEC)
    haystack = "\n".join([raw, *payloads])
    for secret in PERSONAL_STRINGS:
        escaped = json.dumps(secret)[1:-1]  # the \uXXXX form, in case something JSON-escaped it
        assert secret not in haystack and escaped not in haystack, f"personal data in history: {secret!r}"
    # ...while the references are there: proves the payloads were actually decoded and searched
    assert str(agencies.child_id) in "\n".join(payloads)
    assert agencies.registration_number in "\n".join(payloads)


# ---- 3. needs attention, then an operator's update ------------------------------------------------------------

@pytest.mark.parametrize("step_kind", STEP_KINDS, indirect=True)
async def test_needs_attention_waits_for_operator_and_other_stages_go_on(
        agencies: FakeAgencies, births: Births) -> None:
    agencies.residence_attention_reason = "mother-not-in-registry"
    handle = await births.start()

    await wait_for_attention(handle, "mother-not-in-registry")
    assert await handle.query(BirthRegistrationWorkflow.attention_reason) == "mother-not-in-registry"
    assert agencies.started("add_to_school_forecast") == []
    assert Stage.RESIDENCE_REGISTERED not in agencies.notified_stages()
    assert Counter(agencies.notified_stages()) == Counter([
        Stage.BIRTH_RECORDED, Stage.PERSONAL_ID_ASSIGNED, Stage.HEALTH_INSURANCE_ISSUED, Stage.VACCINATION_PLANNED])

    # a household the residence agency does not know: the update fails, the workflow keeps waiting
    unknown = SupplyHousehold(household_id=agencies.household_id)  # the fake knows only the operator household
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(BirthRegistrationWorkflow.supply_household, unknown)
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "InvalidHousehold"
    assert "supplied-household-unknown" in failed.value.cause.message
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert (await search_attributes(handle)).get(NEEDS_ATTENTION) is True
    assert states(await handle.query(BirthRegistrationWorkflow.progress))[Stage.RESIDENCE_REGISTERED] \
        == "needs_attention"
    assert agencies.started("add_to_school_forecast") == []

    # the household the operator found
    result = await handle.execute_update(BirthRegistrationWorkflow.supply_household,
                                         SupplyHousehold(household_id=agencies.operator_household_id))
    assert result == "residence registered"

    outcome = await handle.result()
    assert_all_done(outcome, agencies)
    assert [c.arg.household_id for c in agencies.started("register_residence")] == [
        None, agencies.household_id, agencies.operator_household_id]
    assert Counter(agencies.notified_stages()) == Counter(Stage)
    assert agencies.index("end", "notify_family", Stage.RESIDENCE_REGISTERED) \
        < agencies.index("start", "add_to_school_forecast")
    attrs = await search_attributes(handle)
    assert attrs.get(NEEDS_ATTENTION) is False
    assert attrs.get(ATTENTION_REASON) is None
    assert attrs.get(STAGE) == "completed"
    assert await handle.query(BirthRegistrationWorkflow.attention_reason) is None


async def test_supply_household_is_rejected_when_the_birth_is_not_waiting(
        agencies: FakeAgencies, births: Births) -> None:
    gate = agencies.health_card_gate = asyncio.Event()  # keeps the workflow running
    handle = await births.start()
    await eventually(lambda: handle.query(BirthRegistrationWorkflow.progress),
                     lambda p: states(p)[Stage.SCHOOL_FORECAST_ADDED] == "done", what="residence and school done")

    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await handle.execute_update(BirthRegistrationWorkflow.supply_household,
                                    SupplyHousehold(household_id=agencies.operator_household_id))
    assert isinstance(rejected.value.cause, ApplicationError)
    assert "not waiting for a household" in rejected.value.cause.message
    assert len(agencies.started("register_residence")) == 1  # the handler never ran

    gate.set()
    assert_all_done(await handle.result(), agencies)
    events = (await handle.fetch_history()).events
    assert not [e for e in events if e.HasField("workflow_execution_update_accepted_event_attributes")], \
        "a rejected update must leave no trace in history"


# ---- 4. waiting a long time does not time out ----------------------------------------------------------------

async def test_birth_waits_400_days_for_the_operator_then_completes(
        env: WorkflowEnvironment, agencies: FakeAgencies, births: Births) -> None:
    agencies.residence_attention_reason = "no-household-on-record-for-parents"
    handle = await births.start()
    await wait_for_attention(handle, "no-household-on-record-for-parents")

    before = await env.get_current_time()
    await env.sleep(timedelta(days=400))
    assert await env.get_current_time() - before >= timedelta(days=400)

    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert (await search_attributes(handle)).get(NEEDS_ATTENTION) is True
    assert states(await handle.query(BirthRegistrationWorkflow.progress))[Stage.RESIDENCE_REGISTERED] \
        == "needs_attention"

    assert await handle.execute_update(BirthRegistrationWorkflow.supply_household,
                                       SupplyHousehold(household_id=agencies.operator_household_id)) \
        == "residence registered"
    outcome = await handle.result()
    assert_all_done(outcome, agencies)
    at = {s.stage: datetime.fromisoformat(s.at or "") for s in outcome.stages}
    assert at[Stage.RESIDENCE_REGISTERED] - at[Stage.BIRTH_RECORDED] >= timedelta(days=400)
    assert at[Stage.HEALTH_INSURANCE_ISSUED] - at[Stage.BIRTH_RECORDED] < timedelta(days=1)


# ---- 5. an agency that keeps failing is retried with backoff ------------------------------------------------

@pytest.mark.parametrize("step_kind", STEP_KINDS, indirect=True)
async def test_failing_agency_is_retried_with_backoff_not_failed(
        agencies: FakeAgencies, births: Births, step_kind: str) -> None:
    agencies.health_card_failures = 4
    handle = await births.start()

    outcome = await handle.result()

    assert_all_done(outcome, agencies)
    attempts = agencies.started("issue_child_health_card")
    assert [c.attempt for c in attempts] == [1, 2, 3, 4, 5]
    assert [c.attempt for c in agencies.calls if c.phase == "end" and c.name == "issue_child_health_card"] == [5]
    started = [c.started_at for c in attempts]
    assert all(t is not None for t in started)
    gaps = [later - earlier for earlier, later in zip(started, started[1:], strict=False)]  # type: ignore[operator]
    # AGENCY_RETRY: 1 s, doubling each time
    if step_kind == "regular":  # server-side virtual time, skipped by the test server
        for gap, expected in zip(gaps, (1, 2, 4, 8), strict=True):
            assert timedelta(seconds=expected) <= gap < timedelta(seconds=expected + 1), gaps
    else:  # the first retry waits in the worker (real time); the longer backoffs are durable workflow timers
        assert timedelta(seconds=1) <= gaps[0] < timedelta(seconds=3), gaps
        history = await handle.fetch_history()
        timers = [e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta() for e in history.events
                  if e.HasField("timer_started_event_attributes")]
        assert timers == [timedelta(seconds=2), timedelta(seconds=4), timedelta(seconds=8)]
    assert Counter(agencies.notified_stages())[Stage.HEALTH_INSURANCE_ISSUED] == 1


@pytest.mark.parametrize("step_kind", STEP_KINDS, indirect=True)
async def test_agency_down_past_its_retries_waits_for_an_operator_then_resumes(
        env: WorkflowEnvironment, agencies: FakeAgencies, births: Births) -> None:
    agencies.health_card_down = True
    handle = await births.start()
    await eventually(lambda: handle.query(BirthRegistrationWorkflow.progress),
                     lambda p: states(p)[Stage.SCHOOL_FORECAST_ADDED] == "done", what="other stages done")

    async def attributes_minutes_later() -> TypedSearchAttributes:
        """Virtual time moves on while we look: the server does not see a local step's retry in flight, so one
        long skip could pass before the next backoff timer exists."""
        await env.sleep(timedelta(minutes=5))
        return await search_attributes(handle)

    attrs = await eventually(attributes_minutes_later, lambda sa: sa.get(NEEDS_ATTENTION) is True,
                             what="NeedsAttention=True after the retries are spent (~8.5 min of backoff)", within=60)
    assert attrs.get(ATTENTION_REASON) == "issue_child_health_card-failing"
    progress = {s.stage: s for s in await handle.query(BirthRegistrationWorkflow.progress)}
    assert progress[Stage.HEALTH_INSURANCE_ISSUED].state == "needs_attention"
    assert progress[Stage.HEALTH_INSURANCE_ISSUED].detail == "issue_child_health_card-failing (AgencyUnavailable)"
    assert len(agencies.started("issue_child_health_card")) == AGENCY_MAX_ATTEMPTS
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING  # the registration is not undone

    agencies.health_card_down = False
    answer = await handle.execute_update(BirthRegistrationWorkflow.retry_failed_steps)
    assert answer == "retrying 1 step(s): issue_child_health_card/health_insurance_issued"
    outcome = await handle.result()
    assert_all_done(outcome, agencies)
    assert (await search_attributes(handle)).get(NEEDS_ATTENTION) is False
    assert Counter(agencies.notified_stages())[Stage.HEALTH_INSURANCE_ISSUED] == 1


async def test_retry_is_rejected_when_no_step_has_failed(agencies: FakeAgencies, births: Births) -> None:
    agencies.health_card_gate = asyncio.Event()  # keep the workflow running, with nothing failed
    handle = await births.start()
    await eventually(lambda: handle.query(BirthRegistrationWorkflow.progress),
                     lambda p: states(p)[Stage.HEALTH_INSURANCE_ISSUED] == "running", what="insurance running")
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(BirthRegistrationWorkflow.retry_failed_steps)
    agencies.health_card_gate.set()
    assert_all_done(await handle.result(), agencies)


# ---- 6. replay ---------------------------------------------------------------------------------------------------

async def test_replay_happy_path_history(births: Births) -> None:
    handle = await births.start()
    await handle.result()
    history = await handle.fetch_history()

    result = await replayer().replay_workflow(history)
    assert result.replay_failure is None
    save_history_if_requested("birth_happy_path", history)  # recorded before the lifecycle hand-over existed
    save_history_if_requested("birth_lifecycle_handover", history)  # and with it


async def test_replay_needs_attention_history(
        agencies: FakeAgencies, births: Births) -> None:
    agencies.residence_attention_reason = "mother-not-in-registry"
    handle = await births.start()
    await wait_for_attention(handle, "mother-not-in-registry")
    with pytest.raises(WorkflowUpdateFailedError):  # a failed update is part of the history too
        await handle.execute_update(BirthRegistrationWorkflow.supply_household,
                                    SupplyHousehold(household_id=agencies.household_id))
    await handle.execute_update(BirthRegistrationWorkflow.supply_household,
                                SupplyHousehold(household_id=agencies.operator_household_id))
    await handle.result()
    history = await handle.fetch_history()
    assert sum(e.HasField("workflow_execution_update_completed_event_attributes") for e in history.events) == 2

    result = await replayer().replay_workflow(history)
    assert result.replay_failure is None
    save_history_if_requested("birth_needs_attention", history)


@pytest.mark.parametrize("step_kind", STEP_KINDS, indirect=True)
async def test_new_registrations_run_their_steps_as_local_activities(births: Births, step_kind: str) -> None:
    handle = await births.start()
    await handle.result()
    history = await handle.fetch_history()

    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")]
    local = [e for e in history.events if e.HasField("marker_recorded_event_attributes")
             and e.marker_recorded_event_attributes.marker_name == "core_local_activity"]
    if step_kind == "local":  # six stages, each with its notice in the same step (STAGE_NOTICE_PATCH); the hand-over
        names = [_local_activity_type(e) for e in local]
        assert scheduled == []
        assert names[:2] + names[-1:] == [with_notice("record_birth"), with_notice("assign_personal_id"),
                                          "start_citizen_lifecycle"]
        assert sorted(names[2:-1]) == sorted(with_notice(s) for s in (*PARALLEL_ACTIVITIES, "add_to_school_forecast"))
        assert sorted(births.agencies.notified_stages()) == sorted(Stage)
        assert len(history.events) <= 30
        assert (await replayer().replay_workflow(history)).replay_failure is None
        save_history_if_requested("birth_stage_notices", history)
    else:  # a registration started before LOCAL_STEPS_PATCH, as the committed histories replay it
        assert (len(scheduled), local) == (13, [])  # six stages, six notices, the lifecycle hand-over


def _local_activity_type(event: Any) -> str:
    """The activity type a local-activity marker records (in its `data` details, as JSON)."""
    data = event.marker_recorded_event_attributes.details["data"].payloads[0].data
    return str(json.loads(data)["activity_type"])


@workflow.defn(name="BirthRegistrationWorkflow", sandboxed=False)
class ReorderedBirthWorkflow:
    """A careless change: the personal ID requested before the birth is recorded."""

    @workflow.run
    async def run(self, case: BirthCase) -> None:
        await workflow.execute_activity("assign_personal_id", case, start_to_close_timeout=timedelta(seconds=60))


async def test_replay_detects_an_incompatible_change() -> None:
    """The committed-history check below can fail: a reordered workflow does not replay."""
    path = HISTORIES / "birth_happy_path.json"
    if not path.exists():
        pytest.fail(f"{path} missing: run `REGENERATE_HISTORIES=1 pytest tests/workflow` once and commit it")
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    broken = Replayer(workflows=[ReorderedBirthWorkflow], data_converter=TEST_CONVERTER,
                      workflow_runner=UnsandboxedWorkflowRunner())
    with pytest.raises(NondeterminismError):
        await broken.replay_workflow(history)


async def test_replay_committed_histories() -> None:
    """Every committed history must still replay on the current workflow code (kept last: regeneration first)."""
    paths = sorted(HISTORIES.glob("*.json"))
    missing = set(COMMITTED_HISTORIES) - {p.stem for p in paths}
    assert not missing, f"missing {missing}: run `REGENERATE_HISTORIES=1 pytest tests/workflow` once and commit"
    for path in paths:
        history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
        result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure!r}"


async def test_a_stage_that_does_not_apply_records_why_and_sends_no_notice(
        agencies: FakeAgencies, births: Births) -> None:
    agencies.child_too_old_for_card = True  # e.g. a birth registered when the child was already 6
    handle = await births.start()
    outcome = await handle.result()
    stage = {s.stage: s for s in outcome.stages}[Stage.HEALTH_INSURANCE_ISSUED]
    assert stage.state == "not_applicable" and stage.detail == "no card: 6 or older when registered"
    assert Stage.HEALTH_INSURANCE_ISSUED not in agencies.notified_stages()
    assert sorted(agencies.notified_stages()) == sorted(set(Stage) - {Stage.HEALTH_INSURANCE_ISSUED})
    assert agencies.lifecycles_started == {agencies.child_id}
