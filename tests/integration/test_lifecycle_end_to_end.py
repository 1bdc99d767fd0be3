"""An age-aware birth and the hand-over to the citizen's lifecycle, on the real servers."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

import rules
from events.models import encode_event, make_birth_event
from events.vaccination_administered import VaccinationAdministered, make_vaccination_event
from infra.settings import Settings
from registry.models import (
    BirthRegistration,
    HealthInsuranceCard,
    InboxMessage,
    Notification,
    Person,
    PlannedVaccination,
    SchoolEntryForecast,
)
from registry.seed import VN_TZ, family, synthetic_birth
from rules.producers import producer_source
from starter import publish_raw
from tests.helpers import eventually
from workflows.birth import BirthRegistrationWorkflow
from workflows.client import birth_workflow_id
from workflows.contracts import Stage
from workflows.lifecycle import CitizenLifecycleWorkflow
from workflows.lifecycle_client import citizen_workflow_id

from .test_birth_end_to_end import birth_event, child_of, new_registration_number
from .test_cli import cli
from .test_vaccination_events import dead_letters

pytestmark = pytest.mark.integration


async def register_birth(settings: Settings, service: Any, fam_index: int, born: date) -> tuple[str, Person]:
    """Publish a birth registered now (late when `born` is long ago) and wait for its workflow to complete."""
    reg = new_registration_number("L")
    payload = synthetic_birth(family(fam_index), registration_number=reg, date_of_birth=born, sex="female",
                              registered_at=datetime.now(VN_TZ).replace(microsecond=0) - timedelta(minutes=1),
                              language="en")
    await publish_raw(settings, [encode_event(make_birth_event(payload))], progress=False)
    handle = service.client.get_workflow_handle(birth_workflow_id(family(fam_index).province_code, reg))

    async def status() -> WorkflowExecutionStatus | None:
        try:
            return (await handle.describe()).status
        except RPCError:  # not started yet
            return None

    await eventually(status, lambda s: s == WorkflowExecutionStatus.COMPLETED, within=90,
                     what="birth workflow completed")
    return reg, await child_of(service, reg)


async def notices_of(service: Any, child: Person) -> dict[str, Notification]:
    async with service.registry.unit_of_work() as session:
        rows = (await session.scalars(select(Notification).where(Notification.citizen_person_id == child.id))).all()
    return {n.stage: n for n in rows}


async def test_ten_months_late_gets_a_catch_up_plan_and_a_lifecycle(settings: Settings, service: Any) -> None:
    today = rules.local_date(datetime.now(VN_TZ))
    born = rules.add_months(today, -10)
    reg, child = await register_birth(settings, service, 11, born)

    async with service.registry.unit_of_work() as session:
        plan = {(d.vaccine, d.dose): d for d in (await session.scalars(
            select(PlannedVaccination).where(PlannedVaccination.person_id == child.id))).all()}
    dpt = [plan[("DPT_VGB_HIB", n)] for n in (1, 2, 3)]
    assert [d.due_date for d in dpt] == [today, rules.add_months(today, 1), rules.add_months(today, 2)]
    assert all(d.overdue_at_planning for d in dpt) and plan[("MEASLES", 1)].overdue_at_planning
    assert ("HEPB_BIRTH", 1) not in plan
    assert not plan[("JE", 1)].overdue_at_planning

    notice = (await notices_of(service, child))[Stage.VACCINATION_PLANNED.value]
    overdue_part = notice.body.split("Next:")[0]
    assert "Overdue" in overdue_part and "Measles" in overdue_part and "(5-in-1)" in overdue_part

    # handed over: the lifecycle runs, keyed by the person UUID, and knows what is next
    lifecycle = service.client.get_workflow_handle(citizen_workflow_id(child.id))
    timeline = await eventually(lambda: lifecycle.query(CitizenLifecycleWorkflow.timeline),
                                lambda t: any(e.state == "next" for e in t), what="lifecycle agenda loaded")
    assert (await lifecycle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert all(e.on >= today for e in timeline)
    assert any(e.kind == "dose_overdue" and e.on == today + timedelta(days=30) for e in timeline)

    # every parent on record gets the notices
    async with service.registry.unit_of_work() as session:
        roles = set((await session.scalars(select(InboxMessage.recipient_role).where(
            InboxMessage.notification_id == notice.id))).all())
    assert roles == {"mother", "father"}

    code, stdout, stderr = await cli(settings, "timeline", child.personal_id_number or "", "--json")
    assert code == 0, stderr
    out = json.loads(stdout)
    assert [e["key"] for e in out["entries"]] == [e.key for e in timeline]


@pytest.mark.parametrize(("fam_index", "born", "vaccination"), [(98, date(1999, 5, 1), False),  # parents 1986, 1989
                                                                (13, date(2020, 3, 1), True)])
async def test_a_child_registered_past_six_gets_no_card_no_school_place_and_no_false_promise(
        settings: Settings, service: Any, fam_index: int, born: date, vaccination: bool) -> None:
    reg, child = await register_birth(settings, service, fam_index, born)
    async with service.registry.unit_of_work() as session:
        assert await session.scalar(select(HealthInsuranceCard).where(HealthInsuranceCard.person_id == child.id)) \
            is None
        assert await session.get(SchoolEntryForecast, child.id) is None
        planned = (await session.scalars(select(PlannedVaccination)
                                         .where(PlannedVaccination.person_id == child.id))).all()
    assert bool(planned) is vaccination
    if vaccination:  # 6 years old: a catch-up plan without the infant-only doses
        assert {(p.vaccine, p.dose) for p in planned}.isdisjoint({("HEPB_BIRTH", 1), ("ROTA", 1), ("ROTA", 2)})

    notices = await notices_of(service, child)
    expected = {Stage.BIRTH_RECORDED, Stage.PERSONAL_ID_ASSIGNED, Stage.RESIDENCE_REGISTERED}
    if vaccination:
        expected.add(Stage.VACCINATION_PLANNED)
    assert {s for s in notices if s in set(Stage)} == {s.value for s in expected}
    birth_notice = notices[Stage.BIRTH_RECORDED.value].body
    assert "health-insurance" not in birth_notice and "school" not in birth_notice

    progress = await service.client.get_workflow_handle(birth_workflow_id(family(fam_index).province_code, reg)).query(
        BirthRegistrationWorkflow.progress)
    by_stage = {s.stage: s for s in progress}
    for stage in (Stage.HEALTH_INSURANCE_ISSUED, Stage.SCHOOL_FORECAST_ADDED):
        assert by_stage[stage].state == "not_applicable" and by_stage[stage].detail
        assert str(born.year) not in (by_stage[stage].detail or "")


async def test_backfill_starts_a_lifecycle_for_citizens_born_before_the_system(settings: Settings,
                                                                              service: Any) -> None:
    person_id = uuid.uuid4()
    born = date(2025, 6, 1)
    async with service.registry.unit_of_work() as session:
        session.add(Person(id=person_id, full_name="Lê Thị Hoa", sex="female", date_of_birth=born,
                           preferred_language="vi"))
    command = ("backfill", "--born-after", "2025-05-31", "--json")
    code, stdout, stderr = await cli(settings, *command)
    assert code == 0, stderr
    assert json.loads(stdout)["started"] >= 1
    lifecycle = service.client.get_workflow_handle(citizen_workflow_id(person_id))
    assert (await lifecycle.describe()).status == WorkflowExecutionStatus.RUNNING
    timeline = await eventually(lambda: lifecycle.query(CitizenLifecycleWorkflow.timeline),
                                lambda t: any(e.state == "next" for e in t), what="backfilled agenda")
    assert timeline[0].kind == "id_card_first" or all(e.on >= rules.local_date(datetime.now(VN_TZ))
                                                      for e in timeline)

    code, stdout, stderr = await cli(settings, *command)
    assert code == 0, stderr
    assert json.loads(stdout)["started"] == 0


async def test_a_late_dose_reported_through_nats_replans_the_next_doses_once(settings: Settings,
                                                                             service: Any) -> None:
    today = rules.local_date(datetime.now(VN_TZ))
    born = today - timedelta(days=75)  # DPT 1 was due at 2 months: reported two weeks late
    reg = new_registration_number("V")
    payload = synthetic_birth(family(15), registration_number=reg, date_of_birth=born, sex="male")
    await publish_raw(settings, [encode_event(make_birth_event(payload))], progress=False)
    lifecycle = service.client.get_workflow_handle(citizen_workflow_id((await wait_for_child(service, reg)).id))
    await eventually(lambda: timeline_of(lifecycle), lambda t: any(e.state == "next" for e in t), within=60,
                     what="lifecycle running")
    child = await child_of(service, reg)
    assert child.personal_id_number is not None

    def report(event_id: str, given_on: date) -> bytes:
        event = make_vaccination_event(VaccinationAdministered(
            person_id_number=child.personal_id_number or "", vaccine="DPT_VGB_HIB", dose=1, administered_on=given_on,
            health_station_code="TYT-LATE", province_code=payload.province_code), event_id=event_id,
            source=producer_source("health", payload.province_code, "TYT-LATE"))
        return encode_event(event)

    first = report(str(uuid.uuid4()), today)
    await publish_raw(settings, [first], progress=False)
    await eventually(lambda: lifecycle.query(CitizenLifecycleWorkflow.timeline),
                     lambda t: any(e.kind == "dose_reported" for e in t), within=60, what="first report applied")
    # then the same event again, and another report of the same dose with another date
    await publish_raw(settings, [first, report(str(uuid.uuid4()), today - timedelta(days=3))], progress=False)
    timeline = await eventually(lambda: lifecycle.query(CitizenLifecycleWorkflow.timeline),
                                lambda t: len([e for e in t if e.kind == "dose_reported"]) == 2, within=60,
                                what="two distinct reports handled")
    assert sorted(e.state for e in timeline if e.kind == "dose_reported") == ["done", "skipped"]
    async with service.registry.unit_of_work() as session:
        plan = {(d.vaccine, d.dose): d for d in (await session.scalars(
            select(PlannedVaccination).where(PlannedVaccination.person_id == child.id))).all()}
    assert plan[("DPT_VGB_HIB", 1)].administered_on == today  # the first report wins; the second changes nothing
    assert plan[("DPT_VGB_HIB", 2)].due_date == rules.add_months(today, 1)
    assert plan[("DPT_VGB_HIB", 3)].due_date == rules.add_months(rules.add_months(today, 1), 1)
    assert plan[("OPV", 2)].due_date == rules.add_months(born, 3)  # other vaccines keep their dates
    assert any(e.key == f"dose-due/{rules.add_months(today, 1)}" and "DPT_VGB_HIB 2" in e.summary
               for e in timeline), "the re-planned dose has its own reminders"


async def timeline_of(handle: Any) -> list[Any]:
    try:
        return list(await handle.query(CitizenLifecycleWorkflow.timeline))
    except RPCError:  # not started yet
        return []


async def wait_for_child(service: Any, reg: str) -> Person:
    async def probe() -> Person | None:
        try:
            return await child_of(service, reg)
        except AssertionError:
            return None

    child = await eventually(probe, lambda c: c is not None, within=60, what="child recorded")
    assert child is not None
    return child


async def test_births_no_rule_can_serve_are_dead_lettered_without_the_date(settings: Settings,
                                                                         service: Any) -> None:
    tomorrow = (rules.local_date(datetime.now(VN_TZ)) + timedelta(days=1)).isoformat()
    raws: dict[str, bytes] = {}
    for dob in ("1850-06-01", tomorrow):
        _, raw = birth_event(16)
        doc = json.loads(raw)
        doc["data"]["child"]["date_of_birth"] = dob
        raws[dob] = json.dumps(doc, ensure_ascii=False).encode()
    await publish_raw(settings, list(raws.values()), progress=False)
    entries = await eventually(lambda: dead_letters(service, settings),
                               lambda d: all(r in d for r in raws.values()), within=30, what="both dead-lettered")
    for dob, raw in raws.items():
        _, reason = entries[raw]
        assert "data.child.date_of_birth" in reason and dob not in reason, reason
    async with service.registry.unit_of_work() as session:
        regs = [json.loads(r)["data"]["registration_number"] for r in raws.values()]
        assert not (await session.scalars(select(BirthRegistration.id).where(
            BirthRegistration.registration_number.in_(regs)))).all()
