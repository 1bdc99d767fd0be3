"""New registrations: every stage of a birth, each with its notice, and the hand-over in ONE local activity
(STAGES_AT_ONCE_PATCH); stage by stage when that step fails; a residence that waits for a person goes on from
where the one step stopped. On the time-skipping test server, in the sandbox, with the fake agencies."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from infra.search_attributes import ATTENTION_REASON, NEEDS_ATTENTION, STAGE
from tests.helpers import eventually, payload_texts, save_history_if_requested
from workflows.birth import BirthRegistrationWorkflow, SupplyHousehold
from workflows.contracts import BIRTH_AT_ONCE, BirthOutcome, Stage, with_notice

from .conftest import AT_ONCE, PARALLEL_ACTIVITIES, PERSONAL_STRINGS, TEST_CODEC, Births, FakeAgencies
from .test_birth_workflow import _local_activity_type, assert_all_done, replayer, search_attributes, states

pytestmark = pytest.mark.parametrize("step_kind", [AT_ONCE], indirect=True)

ONE_STEP_ORDER = ["record_birth", "assign_personal_id", "register_residence", "issue_child_health_card",
                  "plan_vaccinations", "add_to_school_forecast"]


def local_steps(history: Any) -> list[str]:
    return [_local_activity_type(e) for e in history.events if e.HasField("marker_recorded_event_attributes")
            and e.marker_recorded_event_attributes.marker_name == "core_local_activity"]


def upserted_stages(history: Any) -> list[str]:
    """The values the `Stage` search attribute was upserted to, in order."""
    values = []
    for e in history.events:
        if e.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if "Stage" in fields:
                values.append(json.loads(fields["Stage"].data))
    return values


def newly_notified(agencies: FakeAgencies) -> Counter[str]:
    """Notices stored per stage (the fake outbox is keyed `<workflow id>/<stage>`, as the registry's is)."""
    return Counter(key.rsplit("/", 1)[1] for key in agencies.outbox)


async def test_a_new_registration_runs_every_stage_in_one_step(agencies: FakeAgencies, births: Births) -> None:
    handle = await births.start()
    outcome = await handle.result()

    assert_all_done(outcome, agencies)
    history = await handle.fetch_history()
    assert local_steps(history) == [BIRTH_AT_ONCE]  # one activation's step: nothing else was scheduled
    assert not any(e.HasField("activity_task_scheduled_event_attributes") for e in history.events)
    started = [c.name for c in agencies.calls if c.phase == "start"]
    # each stage, then its notice, in the registration's order; the hand-over once all are committed
    expected = [name for step in ONE_STEP_ORDER for name in (step, "notify_family")] + ["start_citizen_lifecycle"]
    assert started == expected
    assert agencies.notified_stages() == list(Stage)
    assert newly_notified(agencies) == Counter(s.value for s in Stage)
    assert agencies.lifecycles_started == {agencies.child_id}
    # the stages pass by in one activation: the Stage attribute is set once, when the birth completes
    assert upserted_stages(history) == ["completed"]
    attrs = await search_attributes(handle)
    assert (attrs.get(STAGE), attrs.get(NEEDS_ATTENTION), attrs.get(ATTENTION_REASON)) == ("completed", False, None)
    patches = [e for e in history.events if e.HasField("marker_recorded_event_attributes")
               and e.marker_recorded_event_attributes.marker_name == "core_patch"]
    assert len(patches) == 1  # the one patch implies the older ones
    assert len(history.events) <= 12, len(history.events)

    haystack = "\n".join([history.to_json(), *payload_texts(json.loads(history.to_json()), TEST_CODEC)])
    assert str(agencies.child_id) in haystack  # the payloads were decoded: references there, personal data not
    assert not [secret for secret in PERSONAL_STRINGS if secret in haystack]
    assert (await replayer().replay_workflow(history)).replay_failure is None
    save_history_if_requested("birth_stages_at_once", history)


async def test_a_failing_step_sends_the_birth_stage_by_stage_and_nothing_twice(
        agencies: FakeAgencies, births: Births) -> None:
    agencies.health_card_failures = 1  # the insurance agency fails once: inside the one step
    handle = await births.start()
    outcome = await handle.result()

    assert_all_done(outcome, agencies)
    steps = local_steps(await handle.fetch_history())
    assert steps[0] == BIRTH_AT_ONCE  # failed, then each stage on its own, as a registration before the patch
    assert steps[1:3] == [with_notice("record_birth"), with_notice("assign_personal_id")]
    assert sorted(steps[3:-1]) == sorted(with_notice(s) for s in (*PARALLEL_ACTIVITIES, "add_to_school_forecast"))
    assert steps[-1] == "start_citizen_lifecycle"
    # the one step is not retried; the stage's own step is (the fake fails every first attempt)
    assert [c.attempt for c in agencies.started("issue_child_health_card")] == [1, 1, 2]
    # the steps before the failure ran twice, idempotently: one notice per stage, one lifecycle
    assert newly_notified(agencies) == Counter(s.value for s in Stage)
    assert agencies.lifecycles_started == {agencies.child_id}
    assert (await search_attributes(handle)).get(STAGE) == "completed"


async def test_a_residence_waiting_for_a_person_goes_on_from_the_one_step(
        agencies: FakeAgencies, births: Births) -> None:
    agencies.residence_attention_reason = "mother-not-in-registry"
    handle: WorkflowHandle[BirthRegistrationWorkflow, BirthOutcome] = await births.start()

    attrs = await eventually(lambda: search_attributes(handle), lambda sa: sa.get(NEEDS_ATTENTION) is True,
                             what="NeedsAttention=True")
    assert (attrs.get(ATTENTION_REASON), attrs.get(STAGE)) == ("mother-not-in-registry", "residence_registered")
    assert states(await handle.query(BirthRegistrationWorkflow.progress)) == {
        Stage.BIRTH_RECORDED: "done", Stage.PERSONAL_ID_ASSIGNED: "done",
        Stage.RESIDENCE_REGISTERED: "needs_attention", Stage.HEALTH_INSURANCE_ISSUED: "done",
        Stage.VACCINATION_PLANNED: "done", Stage.SCHOOL_FORECAST_ADDED: "pending"}
    # the one step did what it could: no school forecast and no hand-over without a residence
    assert agencies.started("add_to_school_forecast") == agencies.started("start_citizen_lifecycle") == []
    assert sorted(agencies.notified_stages()) == sorted([Stage.BIRTH_RECORDED, Stage.PERSONAL_ID_ASSIGNED,
                                                         Stage.HEALTH_INSURANCE_ISSUED, Stage.VACCINATION_PLANNED])

    await handle.execute_update(BirthRegistrationWorkflow.supply_household,
                                SupplyHousehold(household_id=agencies.operator_household_id))
    outcome = await handle.result()

    assert_all_done(outcome, agencies)
    assert newly_notified(agencies) == Counter(s.value for s in Stage)
    assert local_steps(await handle.fetch_history()) == [
        BIRTH_AT_ONCE, "register_residence", "notify_family", with_notice("add_to_school_forecast"),
        "start_citizen_lifecycle"]  # the household the operator supplied, its notice, then the rest
    assert agencies.index("end", "notify_family", Stage.RESIDENCE_REGISTERED) \
        < agencies.index("start", "add_to_school_forecast")
    assert (await search_attributes(handle)).get(STAGE) == "completed"
