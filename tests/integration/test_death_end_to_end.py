"""A registered death reaches every agency once and stops everything else, on the real servers."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

import rules
from activities.notification import RegistryNotificationAgency
from events.death_registered import DeathRegistered, make_death_event
from events.envelope import encode_event
from infra.settings import Settings
from registry.models import (
    FuneralAllowance,
    HealthInsuranceCard,
    InboxMessage,
    Notification,
    Person,
    ResidencePeriod,
)
from registry.seed import VN_TZ, family
from rules.producers import producer_source
from starter import publish_raw
from tests.helpers import eventually, save_history_if_requested
from workflows.contracts import DeathOutcome
from workflows.death import DeathRegistrationWorkflow, death_workflow_id
from workflows.lifecycle import CitizenLifecycleWorkflow
from workflows.lifecycle_client import citizen_workflow_id

from .test_birth_end_to_end import birth_event, child_of, wait_all_stages
from .test_lifecycle_end_to_end import timeline_of
from .test_vaccination_events import dead_letters

pytestmark = pytest.mark.integration


def death_event(id_number: str, name: str, died: date, *, province: str = "079", declarant_id: str | None = None,
                registration_number: str | None = None) -> bytes:
    payload = DeathRegistered.model_validate({
        "registration_number": registration_number or "KT" + uuid.uuid4().hex[:10].upper(),
        "registered_at": (datetime.now(VN_TZ) - timedelta(minutes=1)).replace(microsecond=0).isoformat(),
        "office_code": "UBND-TEST", "province_code": province,
        "deceased": {"person_id_number": id_number, "full_name": name, "date_of_death": died.isoformat()},
        "declarant": {"full_name": "Người Khai", "id_number": declarant_id, "relationship": "parent"},
    })
    return encode_event(make_death_event(payload, source=producer_source("civil", province, "TEST")))


async def death_completed(service: Any, person_id: uuid.UUID) -> DeathOutcome:
    handle = service.client.get_workflow_handle_for(DeathRegistrationWorkflow.run, death_workflow_id(person_id))

    async def status() -> WorkflowExecutionStatus | None:
        try:
            return (await handle.describe()).status
        except RPCError:
            return None

    await eventually(status, lambda s: s == WorkflowExecutionStatus.COMPLETED, within=60, what="death workflow done")
    save_history_if_requested("death_registration", await handle.fetch_history())
    return await handle.result()


class Discard:
    async def publish(self, notice: Notification) -> None:
        raise AssertionError("no notice may be announced about a deceased citizen")


async def test_a_child_who_died_gets_nothing_more_and_every_agency_acts_once(settings: Settings,
                                                                             service: Any) -> None:
    fam = family(21)
    reg, raw = birth_event(21, sex="female")
    await publish_raw(settings, [raw], progress=False)
    await wait_all_stages(service, [reg])
    child = await child_of(service, reg)
    assert child.personal_id_number is not None
    lifecycle = service.client.get_workflow_handle(citizen_workflow_id(child.id))
    await eventually(lambda: timeline_of(lifecycle), lambda t: any(e.state == "next" for e in t), within=60,
                     what="lifecycle running")
    died = rules.local_date(datetime.now(VN_TZ))

    first = death_event(child.personal_id_number, child.full_name, died, province=fam.province_code,
                        declarant_id=fam.mother.id_number)
    await publish_raw(settings, [first], progress=False)
    outcome = await death_completed(service, child.id)
    assert outcome.steps["stop_citizen_lifecycle"] == "lifecycle stopped"
    await eventually(lifecycle.describe, lambda d: d.status == WorkflowExecutionStatus.COMPLETED, within=30,
                     what="lifecycle ended by the death")
    assert (await lifecycle.query(CitizenLifecycleWorkflow.timeline))[-1].kind == "ended"

    # recorded twice (another office's record of the same death): harmless
    again = death_event(child.personal_id_number, child.full_name, died, province=fam.province_code,
                        declarant_id=fam.mother.id_number)
    await publish_raw(settings, [first, again], progress=False)
    async with service.registry.unit_of_work() as session:
        person = await session.get(Person, child.id)
        assert person is not None and person.status == "deceased" and person.date_of_death == died
        assert person.household_id is None
        periods = (await session.scalars(select(ResidencePeriod).where(ResidencePeriod.person_id == child.id))).all()
        assert [(p.valid_to, p.ended_by) for p in periods] == [(died, "death")]
        card = await session.scalar(select(HealthInsuranceCard).where(HealthInsuranceCard.person_id == child.id))
        assert card is not None and card.closed_on == died and card.closed_reason == "death"
        allowances = (await session.scalars(select(FuneralAllowance)
                                            .where(FuneralAllowance.deceased_person_id == child.id))).all()
        assert [a.declarant_person_id for a in allowances] == [fam.mother.person_id]
        death_notices = (await session.scalars(select(Notification).where(
            Notification.citizen_person_id == child.id, Notification.stage == "death_registered"))).all()
        assert len(death_notices) == 1
        roles = set((await session.scalars(select(InboxMessage.recipient_role).where(
            InboxMessage.notification_id == death_notices[0].id))).all())
        assert roles == {"mother", "father"}  # the declarant is the mother: told once
        before = await session.scalar(select(func.count()).select_from(Notification)
                                      .where(Notification.citizen_person_id == child.id))

    # a notice already on its way when the death was recorded: the send checks the status and sends nothing
    late = await RegistryNotificationAgency(service.registry, Discard()).deliver(
        f"{citizen_workflow_id(child.id)}/dose-reminder/late", child.id, "dose_reminder",
        citizen_workflow_id(child.id), lambda session, person: _no_context())
    assert late.notification_id is None
    async with service.registry.unit_of_work() as session:
        assert await session.scalar(select(func.count()).select_from(Notification)
                                    .where(Notification.citizen_person_id == child.id)) == before


async def _no_context() -> dict[str, Any]:
    raise AssertionError("nothing may be rendered about a deceased citizen")


async def test_death_of_a_person_born_before_the_system(settings: Settings, service: Any) -> None:
    fam = family(22)
    father = fam.father
    died = rules.local_date(datetime.now(VN_TZ)) - timedelta(days=2)
    await publish_raw(settings, [death_event(father.id_number, father.full_name, died, province=fam.province_code,
                                             declarant_id=fam.mother.id_number)], progress=False)
    outcome = await death_completed(service, father.person_id)
    assert outcome.steps["stop_citizen_lifecycle"] == "no lifecycle running"
    assert outcome.steps["close_health_insurance_card"] == "no health-insurance card"
    async with service.registry.unit_of_work() as session:
        person = await session.get(Person, father.person_id)
        assert person is not None and person.status == "deceased" and person.household_id is None
        periods = (await session.scalars(select(ResidencePeriod)
                                         .where(ResidencePeriod.person_id == father.person_id))).all()
        assert [(p.valid_to, p.ended_by) for p in periods] == [(died, "death")]
        assert await session.scalar(select(func.count()).select_from(FuneralAllowance).where(
            FuneralAllowance.deceased_person_id == father.person_id)) == 1


async def test_deaths_that_cannot_be_served_are_dead_lettered(settings: Settings, service: Any) -> None:
    fam = family(23)
    mother = fam.mother
    nobody = rules.compose_personal_id(rules.personal_id_prefix("079", "female", date(1990, 1, 1)), 777777)
    unknown = death_event(nobody, "Ai Đó", date(2026, 1, 1))
    wrong_name = death_event(mother.id_number, "Trần Văn Khác", date(2026, 1, 1), province=fam.province_code)
    before_birth = death_event(mother.id_number, mother.full_name, mother.date_of_birth - timedelta(days=1),
                               province=fam.province_code)
    await publish_raw(settings, [unknown, wrong_name, before_birth], progress=False)
    entries = await eventually(lambda: dead_letters(service, settings),
                               lambda d: all(r in d for r in (unknown, wrong_name, before_birth)), within=30,
                               what="three dead letters")
    assert entries[unknown][1] == "data.deceased.person_id_number: no citizen with this personal ID number"
    assert entries[wrong_name][1].startswith("data.deceased.full_name:")
    assert entries[before_birth][1].startswith("data.deceased.date_of_death:")
    async with service.registry.unit_of_work() as session:
        person = await session.get(Person, mother.person_id)
        assert person is not None and person.status == "alive"
