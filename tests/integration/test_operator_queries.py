"""The Temporal UI queries an operator types (README, "Finding births in the UI"), run against the real server's
visibility store while births are in flight."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest

import rules
from events.models import encode_event, make_birth_event
from infra.search_attributes import ATTENTION_REASON, NEEDS_ATTENTION, PROVINCE_CODE, STAGE
from infra.settings import Settings
from registry.seed import family, synthetic_birth
from starter import publish_raw
from tests.helpers import codec_of, eventually, payload_texts
from tests.integration.test_birth_end_to_end import (
    birth_event,
    new_registration_number,
    wait_all_stages,
    wait_for_attention,
)
from workflows.birth import AT_ONCE_SUMMARY, STEP_SUMMARIES, BirthRegistrationWorkflow, SupplyHousehold
from workflows.client import birth_workflow_id

pytestmark = pytest.mark.integration


def unknown_mother_birth(fam_index: int) -> tuple[str, bytes]:
    """A birth whose mother is not in the registry: residence waits for an operator."""
    fam = family(fam_index)
    mother = rules.compose_personal_id(rules.personal_id_prefix(fam.province_code, "female", date(1991, 2, 3)),
                                       999_998)
    reg = new_registration_number("Q")
    payload = synthetic_birth(fam, registration_number=reg, date_of_birth=date.today() - timedelta(days=3),
                              sex="male", with_father=False)
    data = payload.model_dump(mode="json")
    data["mother"]["id_number"] = mother
    return reg, encode_event(make_birth_event(type(payload).model_validate(data)))


async def query_ids(service: Any, query: str) -> set[str]:
    return {w.id async for w in service.client.list_workflows(query)}


async def test_stage_and_needs_attention_queries_find_exactly_the_waiting_births(
        settings: Settings, service: Any) -> None:
    codes = sorted(rules.provinces())
    here, elsewhere = 21, 22  # family indexes in two neighbouring provinces
    province, other_province = family(here).province_code, family(elsewhere).province_code
    assert codes.index(other_province) == codes.index(province) + 1

    waiting_reg, waiting = unknown_mother_birth(here)
    other_reg, other_waiting = unknown_mother_birth(elsewhere)
    done_reg, done = birth_event(here)
    await publish_raw(settings, [waiting, other_waiting, done], progress=False)
    waiting_id = birth_workflow_id(province, waiting_reg)
    other_id = birth_workflow_id(other_province, other_reg)
    done_id = birth_workflow_id(province, done_reg)
    handle = service.client.get_workflow_handle(waiting_id)
    await wait_for_attention(handle, "mother-not-in-registry")
    await wait_for_attention(service.client.get_workflow_handle(other_id), "mother-not-in-registry")
    await wait_all_stages(service, [done_reg])

    stuck_in_residence = (f"LifeEvent = 'birth' AND Stage = 'residence_registered' "
                          f"AND ProvinceCode = '{province}' AND ExecutionStatus = 'Running'")
    found = await eventually(lambda: query_ids(service, stuck_in_residence), lambda ids: waiting_id in ids,
                             within=30, what="the waiting birth by Stage")
    assert done_id not in found and other_id not in found

    needs_attention = f"LifeEvent = 'birth' AND NeedsAttention = true AND ProvinceCode = '{province}'"
    found = await eventually(lambda: query_ids(service, needs_attention), lambda ids: waiting_id in ids,
                             within=30, what="the waiting birth by NeedsAttention")
    assert done_id not in found and other_id not in found
    for workflow_id in found:  # anything else the query returns really waits, in this province
        attrs = (await service.client.get_workflow_handle(workflow_id).describe()).typed_search_attributes
        assert attrs.get(NEEDS_ATTENTION) is True and attrs.get(PROVINCE_CODE) == province
        assert attrs.get(ATTENTION_REASON)

    async def done_stage() -> str | None:
        return (await service.client.get_workflow_handle(done_id).describe()).typed_search_attributes.get(STAGE)

    await eventually(done_stage, lambda stage: stage == "completed", within=30, what="Stage completed")

    async def bars(workflow_id: str) -> list[str]:
        """What the UI shows on each step's bar (steps as activities before local-agency-steps, else local)."""
        history = (await service.client.get_workflow_handle(workflow_id).fetch_history()).to_json_dict()
        return [json.loads(payload_texts(e["userMetadata"]["summary"], codec_of(service.client))[0])
                for e in history["events"] if "userMetadata" in e and (
                    "activityTaskScheduledEventAttributes" in e or "markerRecordedEventAttributes" in e)]

    assert await bars(done_id) == [AT_ONCE_SUMMARY]  # every stage in one step, one bar saying so

    fam = family(here)
    await handle.execute_update(BirthRegistrationWorkflow.supply_household,
                                SupplyHousehold(household_id=fam.household_id))
    await service.client.get_workflow_handle(other_id).execute_update(
        BirthRegistrationWorkflow.supply_household, SupplyHousehold(household_id=family(elsewhere).household_id))
    await wait_all_stages(service, [waiting_reg, other_reg])
    # what the one step left for after the repair has a bar per step, each saying what it is
    assert await bars(waiting_id) == [
        AT_ONCE_SUMMARY, STEP_SUMMARIES["register_residence"], "notice to the family: residence registered",
        f"{STEP_SUMMARIES['add_to_school_forecast']}; then the notice to the family",
        STEP_SUMMARIES["start_citizen_lifecycle"]]
    cleared = await eventually(lambda: query_ids(service, needs_attention), lambda ids: waiting_id not in ids,
                               within=30, what="the repaired birth leaves the needs-attention query")
    assert other_id not in cleared and done_id not in cleared
    await eventually(lambda: query_ids(service, f"WorkflowId = '{waiting_id}' AND Stage = 'completed'"),
                     lambda ids: ids == {waiting_id}, within=30, what="the repaired birth shows Stage completed")
