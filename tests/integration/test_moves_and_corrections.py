"""Moves and birth corrections through NATS → bridge → Temporal → agencies, on the real servers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.service import RPCError

import rules
from activities.identity import RegistryIdentityAgency
from activities.insurance import card_number_for
from activities.lifecycle import RegistryLifecycleAgency
from activities.notification import NoticeRenderer, RegistryNotificationAgency
from events.birth_corrected import BirthCorrected, make_correction_event
from events.envelope import encode_event
from events.residence_changed import UNKNOWN_HOUSEHOLD, ResidenceChanged, make_residence_event
from infra.settings import Settings
from registry.models import (
    Address,
    BirthCorrection,
    DataAccess,
    HealthInsuranceCard,
    HealthStationTask,
    Household,
    IdentityNumber,
    Notification,
    Person,
    PlannedVaccination,
    ResidenceChange,
    ResidencePeriod,
    SchoolEntryForecast,
)
from registry.seed import VN_TZ, family
from starter import publish_raw
from tests.helpers import eventually, save_history_if_requested
from workflows.change_contracts import ChangeOutcome
from workflows.contracts import AgendaAction, AgendaItem, AssignIdInput

from .test_birth_end_to_end import birth_event, child_of, wait_all_stages
from .test_vaccination_events import dead_letters

pytestmark = pytest.mark.integration


async def born(settings: Settings, service: Any, fam_index: int, sex: str = "female") -> tuple[str, str, Person]:
    """A birth 5 days ago, every stage done: (registration number, province, child)."""
    reg, raw = birth_event(fam_index, sex=sex)
    await publish_raw(settings, [raw], progress=False)
    await wait_all_stages(service, [reg])
    return reg, json.loads(raw)["data"]["province_code"], await child_of(service, reg)


async def finished(service: Any, model: Any, prefix: str, event_id: str) -> ChangeOutcome:
    async def stored() -> uuid.UUID | None:
        async with service.registry.unit_of_work() as session:
            found: uuid.UUID | None = await session.scalar(select(model.id).where(model.event_id == event_id))
            return found

    change_id = await eventually(stored, lambda c: c is not None, within=30, what="change stored")
    handle = service.client.get_workflow_handle(f"{prefix}-{change_id}", result_type=ChangeOutcome)

    async def started() -> bool:  # the bridge stores the change, then starts its workflow
        try:
            await handle.describe()
        except RPCError:
            return False
        return True

    await eventually(started, bool, within=30, what="change workflow started")
    result: ChangeOutcome = await handle.result()
    save_history_if_requested(f"{prefix}_workflow", await handle.fetch_history())
    return result


async def notices(service: Any, person_id: uuid.UUID, stage: str) -> list[Notification]:
    async with service.registry.unit_of_work() as session:
        return list((await session.scalars(select(Notification).where(
            Notification.citizen_person_id == person_id, Notification.stage == stage))).all())


async def ward_of(service: Any, household_number: str) -> tuple[uuid.UUID, str, str]:
    async with service.registry.unit_of_work() as session:
        household = await session.scalar(select(Household).where(Household.household_number == household_number))
        assert household is not None
        address = await session.get(Address, household.address_id)
        assert address is not None
        return household.id, address.province_code, address.ward_code


class Tasks:
    async def publish_task(self, task: HealthStationTask) -> None:
        pass


async def test_a_move_changes_residence_periods_forecast_ward_and_later_escalations(settings: Settings,
                                                                                   service: Any) -> None:
    _, province, child = await born(settings, service, 31)
    old_household = child.household_id
    target = next(family(i) for i in range(32, 60) if family(i).ward_code != family(31).ward_code)
    new_household, new_province, new_ward = await ward_of(service, target.household_number)
    today = rules.local_date(datetime.now(VN_TZ))
    event = make_residence_event(ResidenceChanged(
        person_id_number=child.personal_id_number or "", household_number=target.household_number, moved_on=today,
        office_code="UBND-TEST", province_code=province))
    unknown = make_residence_event(ResidenceChanged(
        person_id_number=child.personal_id_number or "", household_number="HK-NOWHERE", moved_on=today,
        office_code="UBND-TEST", province_code=province))
    await publish_raw(settings, [encode_event(event), encode_event(unknown)], progress=False)

    outcome = await finished(service, ResidenceChange, "move", event.id)
    assert outcome.steps["move_residence"] == "moved"
    async with service.registry.unit_of_work() as session:
        periods = (await session.scalars(select(ResidencePeriod).where(ResidencePeriod.person_id == child.id)
                                         .order_by(ResidencePeriod.valid_from, ResidencePeriod.created_at))).all()
        person = await session.get(Person, child.id)
        forecast = await session.get(SchoolEntryForecast, child.id)
    assert [(p.household_id, p.valid_to, p.started_by, p.ended_by) for p in periods] == [
        (old_household, today, "birth", "move"), (new_household, None, "move", None)]
    assert person is not None and person.household_id == new_household
    assert forecast is not None and (forecast.province_code, forecast.ward_code) == (new_province, new_ward)
    assert len(await notices(service, child.id, "residence_changed")) == 1

    # an overdue dose escalated after the move goes to the health station of the new ward
    async with service.registry.unit_of_work() as session:
        dose = await session.scalar(select(PlannedVaccination).where(
            PlannedVaccination.person_id == child.id, PlannedVaccination.administered_on.is_(None))
            .order_by(PlannedVaccination.due_date).limit(1))
    assert dose is not None
    notices_agency = RegistryNotificationAgency(service.registry, _NoGateway(), NoticeRenderer())
    agency = RegistryLifecycleAgency(service.registry, notices_agency, Tasks())
    item = AgendaItem(key=f"dose-overdue/{dose.due_date}", kind="dose_overdue", on=today,
                      at=rules.notice_time(today), summary="dose overdue", doses=[f"{dose.vaccine}.{dose.dose}"],
                      about=dose.due_date)
    wf = f"test-escalation-{uuid.uuid4()}"
    done = await agency.act_on_agenda_item(AgendaAction(person_id=child.id, workflow_id=wf, item=item))
    assert done.done
    async with service.registry.unit_of_work() as session:
        tasks = (await session.scalars(select(HealthStationTask)
                                       .where(HealthStationTask.dedupe_key.startswith(f"{wf}/")))).all()
    assert [(t.province_code, t.ward_code) for t in tasks] == [(new_province, new_ward)]

    entries = await eventually(lambda: dead_letters(service, settings), lambda d: encode_event(unknown) in d,
                               within=30, what="move to an unknown household dead-lettered")
    assert entries[encode_event(unknown)][1] == UNKNOWN_HOUSEHOLD


class _NoGateway:
    async def publish(self, notice: Notification) -> None:
        pass


def correction_of(reg: str, province: str, **corrected: Any) -> Any:
    return make_correction_event(BirthCorrected.model_validate({
        "registration_number": reg, "province_code": province, "office_code": "UBND-TEST",
        "corrected_at": datetime.now(UTC) - timedelta(minutes=1), "corrected": corrected}))


async def snapshot(service: Any, person_id: uuid.UUID) -> dict[str, Any]:
    async with service.registry.unit_of_work() as session:
        person = await session.get(Person, person_id)
        card = await session.scalar(select(HealthInsuranceCard).where(HealthInsuranceCard.person_id == person_id))
        plan = {(d.vaccine, d.dose): d.due_date for d in (await session.scalars(
            select(PlannedVaccination).where(PlannedVaccination.person_id == person_id))).all()}
        forecast = await session.get(SchoolEntryForecast, person_id)
        numbers = {n.number: (n.status, n.replaced_by) for n in (await session.scalars(
            select(IdentityNumber).where(IdentityNumber.person_id == person_id))).all()}
    assert person is not None and card is not None and forecast is not None
    return {"person": person, "card": (card.card_number, card.valid_from, card.valid_until), "plan": plan,
            "entry_year": forecast.entry_year, "numbers": numbers}


async def test_a_name_correction_changes_the_person_once_and_nothing_else(settings: Settings,
                                                                        service: Any) -> None:
    reg, province, child = await born(settings, service, 33)
    before = await snapshot(service, child.id)
    event = correction_of(reg, province, full_name="Trần Thị Ngọc Ánh")
    await publish_raw(settings, [encode_event(event)], progress=False)
    outcome = await finished(service, BirthCorrection, "correction", event.id)
    assert outcome.steps["apply_birth_correction"] == "changed: full_name"
    assert "reissue_personal_id" not in outcome.steps and "replan_vaccinations_after_correction" not in outcome.steps

    after = await snapshot(service, child.id)
    assert after["person"].full_name == "Trần Thị Ngọc Ánh"
    assert {k: v for k, v in after.items() if k != "person"} == {k: v for k, v in before.items() if k != "person"}
    async with service.registry.unit_of_work() as session:
        row = await session.scalar(select(BirthCorrection).where(BirthCorrection.event_id == event.id))
    assert row is not None and row.before == {"full_name": child.full_name}
    assert row.after == {"full_name": "Trần Thị Ngọc Ánh"}
    sent = await notices(service, child.id, "birth_corrected")
    assert len(sent) == 1 and "Trần Thị Ngọc Ánh" in sent[0].subject and child.full_name not in sent[0].body
    async with service.registry.unit_of_work() as session:  # every read of this child names what it read
        reads = (await session.execute(select(DataAccess.agency, DataAccess.purpose, DataAccess.fields).where(
            DataAccess.citizen_person_id == child.id))).all()
    assert {"check a birth correction", "correct the birth record"} <= {r.purpose for r in reads}
    assert all(r.fields and r.fields != "person-record" for r in reads), reads


async def test_a_date_correction_replans_vaccinations_card_and_school(settings: Settings, service: Any) -> None:
    reg, province, child = await born(settings, service, 34)
    before = await snapshot(service, child.id)
    registered_on = child.date_of_birth + timedelta(days=3)  # synthetic births are registered 3 days after
    new_dob = registered_on - timedelta(days=75)
    event = correction_of(reg, province, date_of_birth=new_dob.isoformat())
    await publish_raw(settings, [encode_event(event)], progress=False)
    outcome = await finished(service, BirthCorrection, "correction", event.id)
    assert outcome.steps["apply_birth_correction"] == "changed: date_of_birth"

    after = await snapshot(service, child.id)
    expected = {(d.vaccine, d.dose): d.due_date for d in rules.vaccination_plan(new_dob, as_of=registered_on)}
    assert after["plan"] == expected and after["plan"] != before["plan"]
    assert after["card"][1:] == rules.health_insurance_validity(new_dob)
    assert after["entry_year"] == rules.school_entry_year(new_dob)
    reissued = new_dob.year != child.date_of_birth.year
    assert (after["person"].personal_id_number != child.personal_id_number) is reissued
    assert after["card"][0] == card_number_for(after["person"].personal_id_number)
    assert len(await notices(service, child.id, "birth_corrected")) == 1


async def test_a_sex_correction_reissues_the_id_number_and_the_old_one_is_never_drawn_again(
        settings: Settings, service: Any) -> None:
    reg, province, child = await born(settings, service, 35, sex="female")
    old = child.personal_id_number
    assert old is not None
    event = correction_of(reg, province, sex="male")
    await publish_raw(settings, [encode_event(event)], progress=False)
    outcome = await finished(service, BirthCorrection, "correction", event.id)
    assert outcome.steps["reissue_personal_id"] == "new number issued, the old one cancelled"

    after = await snapshot(service, child.id)
    new = after["person"].personal_id_number
    assert new != old and new.startswith(rules.personal_id_prefix(province, "male", child.date_of_birth))
    assert after["numbers"] == {old: ("cancelled", new), new: ("active", None)}
    assert after["card"][0] == card_number_for(new)
    sent = await notices(service, child.id, "birth_corrected")
    assert len(sent) == 1 and new in sent[0].body and old not in sent[0].body

    # another girl born the same year in the same province: the old number's serial is drawn first, then another
    sibling = Person(id=uuid.uuid4(), full_name="Trần Thị Mai", sex="female", date_of_birth=child.date_of_birth)
    async with service.registry.unit_of_work() as session:
        session.add(sibling)
    draws = iter([int(old[6:]), (int(old[6:]) + 1) % 1_000_000])
    agency = RegistryIdentityAgency(service.registry, draw=lambda: next(draws))
    await agency.assign_personal_id(AssignIdInput(child_person_id=sibling.id, workflow_id="test-redraw",
                                                  registration_number=f"X{uuid.uuid4().hex[:10].upper()}",
                                                  province_code=province))
    async with service.registry.unit_of_work() as session:
        assigned = await session.scalar(select(Person.personal_id_number).where(Person.id == sibling.id))
    assert assigned is not None and assigned != old and assigned[6:] == f"{(int(old[6:]) + 1) % 1_000_000:06d}"


async def test_unknown_registration_and_nothing_changed_are_dead_lettered(settings: Settings, service: Any) -> None:
    reg, province, child = await born(settings, service, 36)
    same = correction_of(reg, province, full_name=child.full_name, sex=child.sex)
    unknown = correction_of("NOSUCHREG01", province, sex="male")
    raws = [encode_event(same), encode_event(unknown)]
    await publish_raw(settings, raws, progress=False)
    entries = await eventually(lambda: dead_letters(service, settings), lambda d: all(r in d for r in raws),
                               within=30, what="both corrections dead-lettered")
    assert entries[raws[0]][1] == "data.corrected: every field equals what the registry holds"
    assert entries[raws[1]][1].startswith("data.registration_number: no birth registration")
    assert child.full_name not in entries[raws[0]][1]
    assert date.today().isoformat() not in entries[raws[0]][1]
