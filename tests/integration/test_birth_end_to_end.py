"""End to end through NATS → bridge → Temporal → agencies → PostgreSQL, on the real servers."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.service import RPCError

import rules
from events.models import encode_event, make_birth_event
from infra.search_attributes import ATTENTION_REASON, NEEDS_ATTENTION
from infra.settings import Settings
from infra.stack import EmbeddedStack
from registry.models import (
    BirthRegistration,
    DataAccess,
    HealthInsuranceCard,
    IdentityNumber,
    Notification,
    Person,
    PlannedVaccination,
    ReceivedEvent,
    ResidenceRegistration,
    SchoolEntryForecast,
)
from registry.seed import family, first_family_in, synthetic_birth
from registry.views import count_notices
from starter import publish_raw
from tests.helpers import as_sent_by_producer, codec_of, eventually, history_plaintext
from workflows.birth import BirthRegistrationWorkflow, SupplyHousehold
from workflows.client import birth_workflow_id
from workflows.contracts import BIRTH_STAGES

pytestmark = pytest.mark.integration
ALL_STAGES = len(BIRTH_STAGES)


def new_registration_number(prefix: str = "T") -> str:
    return prefix + secrets.token_hex(5).upper()


def birth_event(fam_index: int | None = None, *, province: str | None = None, event_id: str | None = None,
                registration_number: str | None = None, **overrides: Any) -> tuple[str, bytes]:
    fam = first_family_in(province) if province else family(fam_index or 0)
    reg = registration_number or new_registration_number()
    payload = synthetic_birth(fam, registration_number=reg, date_of_birth=date.today() - timedelta(days=5),
                              sex=overrides.pop("sex", "female"), **overrides)
    return reg, encode_event(make_birth_event(payload, event_id=event_id))


async def wait_all_stages(svc: Any, registrations: list[str], within: float = 90.0) -> dict[str, int]:
    async def probe() -> dict[str, int]:
        async with svc.registry.unit_of_work() as session:
            return await count_notices(session, registrations)

    return await eventually(probe, lambda c: all(c.get(r, 0) >= ALL_STAGES for r in registrations),
                            within=within, what=f"all stages notified for {len(registrations)} birth(s)")


async def wait_for_attention(handle: Any, reason: str) -> None:
    """Until the birth workflow exists and shows NeedsAttention with `reason` in its search attributes."""
    async def attention() -> tuple[bool | None, str | None]:
        try:
            attrs = (await handle.describe()).typed_search_attributes
        except RPCError:  # not started yet
            return (None, None)
        return attrs.get(NEEDS_ATTENTION), attrs.get(ATTENTION_REASON)

    await eventually(attention, lambda a: a == (True, reason), within=60, what=f"needs attention: {reason}")


async def child_of(svc: Any, registration_number: str) -> Person:
    async with svc.registry.unit_of_work() as session:
        reg = await session.scalar(select(BirthRegistration)
                                   .where(BirthRegistration.registration_number == registration_number))
        assert reg is not None and reg.child_person_id is not None
        child = await session.get(Person, reg.child_person_id)
        assert child is not None
        return child


async def test_birth_through_nats_reaches_every_agency(settings: Settings, service: Any) -> None:
    fam = family(3)
    reg, raw = birth_event(3, sex="male")
    await publish_raw(settings, [raw], progress=False)
    await wait_all_stages(service, [reg])

    child = await child_of(service, reg)
    born = date.today() - timedelta(days=5)
    assert child.personal_id_number is not None
    assert child.personal_id_number.startswith(rules.personal_id_prefix(fam.province_code, "male", born))
    assert rules.personal_id_problem(child.personal_id_number) is None
    async with service.registry.unit_of_work() as session:
        card = await session.scalar(select(HealthInsuranceCard).where(HealthInsuranceCard.person_id == child.id))
        assert card is not None and (card.valid_from, card.valid_until) == rules.health_insurance_validity(born)
        residence = await session.get(ResidenceRegistration, child.id)
        assert residence is not None and residence.household_id == fam.household_id
        assert residence.basis == "mother"
        planned = (await session.scalars(select(PlannedVaccination)
                                         .where(PlannedVaccination.person_id == child.id))).all()
        registered = await session.scalar(select(BirthRegistration.registered_at)
                                          .where(BirthRegistration.registration_number == reg))
        assert registered is not None
        assert sorted((p.vaccine, p.dose, p.due_date) for p in planned) == sorted(  # birth doses caught up
            (d.vaccine, d.dose, d.due_date) for d in rules.vaccination_plan(born, as_of=rules.local_date(registered)))
        forecast = await session.get(SchoolEntryForecast, child.id)
        assert forecast is not None and forecast.entry_year == rules.school_entry_year(born)
        assert forecast.ward_code == fam.ward_code
        readers = set((await session.scalars(select(DataAccess.agency).where(
            DataAccess.workflow_id == birth_workflow_id(fam.province_code, reg)))).all())
        assert {"identity", "residence", "health-insurance", "health", "education", "notification"} <= readers
        id_notice = await session.scalar(select(Notification).where(
            Notification.citizen_person_id == child.id, Notification.stage == "personal_id_assigned"))
        assert id_notice is not None and child.personal_id_number in id_notice.body

    # References in history, data in the registry. The notices commit inside the local steps; their markers reach
    # history when the workflow task completes, so the history is read once the workflow has completed.
    handle = service.client.get_workflow_handle(birth_workflow_id(fam.province_code, reg))
    await handle.result()
    history = await handle.fetch_history()
    text = history_plaintext(history.to_json_dict(), codec_of(service.client))
    for personal in (child.full_name, child.personal_id_number, fam.mother.id_number, fam.mother.full_name,
                     fam.street):
        assert personal not in text
    assert str(child.id) in text


async def test_duplicates_give_one_workflow_one_id_one_card_one_notice_per_stage(
        settings: Settings, service: Any) -> None:
    reg, raw = birth_event(5)
    _, same_registration_new_id = birth_event(5, registration_number=reg, event_id=str(uuid.uuid4()))
    first = await publish_raw(settings, [raw, raw], progress=False)
    assert [r["duplicate"] for r in first] == [False, True]  # broker-side dedupe by CloudEvent id
    await wait_all_stages(service, [reg])
    again = await publish_raw(settings, [same_registration_new_id], progress=False)
    assert again[0]["duplicate"] is False

    async def received() -> int:
        async with service.registry.unit_of_work() as session:
            return int(await session.scalar(select(func.count()).select_from(ReceivedEvent)
                                            .where(ReceivedEvent.registration_number == reg)) or 0)

    await eventually(received, lambda n: n == 2, within=30, what="second event id received by the bridge")
    child = await child_of(service, reg)
    async with service.registry.unit_of_work() as session:
        assert await session.scalar(select(func.count()).select_from(BirthRegistration)
                                    .where(BirthRegistration.registration_number == reg)) == 1
        assert await session.scalar(select(func.count()).select_from(IdentityNumber)
                                    .where(IdentityNumber.registration_number == reg)) == 1
        assert await session.scalar(select(func.count()).select_from(HealthInsuranceCard)
                                    .where(HealthInsuranceCard.person_id == child.id)) == 1
        per_stage = dict((await session.execute(
            select(Notification.stage, func.count()).where(Notification.citizen_person_id == child.id)
            .group_by(Notification.stage))).all())
    assert per_stage == {s.value: 1 for s in BIRTH_STAGES}
    workflow_id = birth_workflow_id(family(5).province_code, reg)
    runs = [w async for w in service.client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    assert len(runs) == 1


async def test_invalid_event_is_dead_lettered_and_the_next_valid_one_goes_through(
        settings: Settings, service: Any, admin_js: Any) -> None:
    from nats.js.errors import NotFoundError

    bad_reg, bad = birth_event(7)
    broken = json.loads(bad)
    broken["data"]["child"]["date_of_birth"] = (date.today() + timedelta(days=30)).isoformat()
    broken["id"] = str(uuid.uuid4())
    not_json = b"{this is not json"
    good_reg, good = birth_event(8)
    await publish_raw(settings, [json.dumps(broken).encode(), not_json, good], progress=False,
                      office=family(8).province_code)  # the office that sent the unreadable one
    await wait_all_stages(service, [good_reg])

    async def dead_letters() -> list[tuple[bytes, str]]:
        js = admin_js
        try:
            info = await js.stream_info(settings.dlq_stream)
        except NotFoundError:
            return []
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(settings.dlq_stream, seq)
            out.append((as_sent_by_producer(msg.data), (msg.headers or {}).get("Dead-Letter-Reason", "")))
        return out

    entries = await eventually(dead_letters, lambda e: len(e) >= 2, within=30, what="two dead letters")
    by_data = {data: reason for data, reason in entries}
    assert by_data[not_json].startswith("envelope: not valid JSON")
    future_reason = by_data[json.dumps(broken).encode()]
    assert "data.child.date_of_birth" in future_reason and "future" in future_reason
    async with service.registry.unit_of_work() as session:
        assert await session.scalar(select(func.count()).select_from(BirthRegistration)
                                    .where(BirthRegistration.registration_number == bad_reg)) == 0


async def test_twenty_concurrent_births_in_one_province_get_distinct_numbers(
        settings: Settings, service: Any) -> None:
    codes = sorted(rules.provinces())
    hcm = [i for i in range(400) if codes[i % len(codes)] == "079"]
    events = [birth_event(hcm[n % len(hcm)], sex="female" if n % 2 else "male") for n in range(20)]
    await publish_raw(settings, [raw for _, raw in events], progress=False)
    registrations = [reg for reg, _ in events]
    await wait_all_stages(service, registrations, within=120)
    async with service.registry.unit_of_work() as session:
        numbers = (await session.scalars(select(IdentityNumber.number)
                                         .where(IdentityNumber.registration_number.in_(registrations)))).all()
    assert len(numbers) == 20 and len(set(numbers)) == 20
    assert all(n.startswith("079") for n in numbers)


async def test_unknown_mother_waits_for_an_operator_then_completes(settings: Settings, service: Any) -> None:
    fam = family(11)
    unknown_mother = rules.compose_personal_id(rules.personal_id_prefix(fam.province_code, "female",
                                                                        date(1990, 1, 1)), 999_999)
    reg = new_registration_number("U")
    payload = synthetic_birth(fam, registration_number=reg, date_of_birth=date.today() - timedelta(days=2),
                              sex="female", with_father=False)
    data = payload.model_dump(mode="json")
    data["mother"]["id_number"] = unknown_mother
    raw = encode_event(make_birth_event(type(payload).model_validate(data)))
    await publish_raw(settings, [raw], progress=False)

    handle = service.client.get_workflow_handle(birth_workflow_id(fam.province_code, reg))
    await wait_for_attention(handle, "mother-not-in-registry")
    result = await handle.execute_update(BirthRegistrationWorkflow.supply_household,
                                         SupplyHousehold(household_id=fam.household_id))
    assert result == "residence registered"
    await wait_all_stages(service, [reg])
    assert (await handle.describe()).typed_search_attributes.get(NEEDS_ATTENTION) is False
    child = await child_of(service, reg)
    async with service.registry.unit_of_work() as session:
        residence = await session.get(ResidenceRegistration, child.id)
    assert residence is not None and residence.basis == "operator" and residence.household_id == fam.household_id


async def test_events_arriving_while_temporal_is_down_are_all_processed_after_restart(
        settings: Settings, stack: EmbeddedStack, service: Any) -> None:
    bridge = service.bridge_instance
    retried_before = bridge.retried
    events = [birth_event(20 + n) for n in range(5)]
    stack.stop_temporal()
    try:
        await publish_raw(settings, [raw for _, raw in events], progress=False)

        async def retried() -> int:
            return int(bridge.retried)

        await eventually(retried, lambda n: n >= retried_before + 5, within=60,
                         what="bridge naks while Temporal is down")
    finally:
        await asyncio.to_thread(stack.start_temporal)
    await wait_all_stages(service, [reg for reg, _ in events], within=180)
