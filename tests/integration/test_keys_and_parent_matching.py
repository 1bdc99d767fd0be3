"""Keys that hold for many offices and events, conflicts dead-lettered, parents matched — on the real servers."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from events.models import encode_event, make_birth_event
from infra.settings import Settings
from registry.births import CONFLICT_REASON
from registry.models import (
    BirthRegistration,
    InboxMessage,
    Notification,
    Person,
    ReceivedEvent,
    ResidencePeriod,
    ResidenceRegistration,
)
from registry.seed import family, synthetic_birth
from rules.producers import producer_source
from starter import publish_raw
from tests.helpers import eventually
from workflows.client import birth_workflow_id

from .test_birth_end_to_end import ALL_STAGES, child_of, new_registration_number, wait_all_stages, wait_for_attention
from .test_vaccination_events import dead_letters

pytestmark = pytest.mark.integration


def _birth(fam_index: int, reg: str, **overrides: Any) -> Any:
    return synthetic_birth(family(fam_index), registration_number=reg, date_of_birth=date.today() - timedelta(days=4),
                           sex=overrides.pop("sex", "female"), **overrides)


async def test_two_offices_with_the_same_event_id_both_count(settings: Settings, service: Any) -> None:
    event_id = f"office-seq-{uuid.uuid4().hex[:8]}"
    first, second = _birth(50, new_registration_number("K")), _birth(51, new_registration_number("K"))
    office_a = producer_source("civil", first.province_code, "office-a")
    office_b = producer_source("civil", second.province_code, "office-b")
    raws = [encode_event(make_birth_event(first, event_id=event_id, source=office_a)),
            encode_event(make_birth_event(second, event_id=event_id, source=office_b))]
    published = await publish_raw(settings, raws, progress=False)
    assert [r["duplicate"] for r in published] == [False, False]  # Nats-Msg-Id from source + id
    await wait_all_stages(service, [first.registration_number, second.registration_number])
    async with service.registry.unit_of_work() as session:
        sources = set((await session.scalars(select(ReceivedEvent.event_source)
                                             .where(ReceivedEvent.event_id == event_id))).all())
    assert sources == {office_a, office_b}


async def test_same_number_with_other_data_is_a_conflict_and_an_identical_resend_is_harmless(
        settings: Settings, service: Any) -> None:
    reg = new_registration_number("C")
    original = _birth(52, reg)
    await publish_raw(settings, [encode_event(make_birth_event(original))], progress=False)
    await wait_all_stages(service, [reg])
    child = await child_of(service, reg)

    changed = original.model_dump(mode="json")
    changed["child"]["full_name"] = changed["child"]["full_name"] + " Khác"
    other_office = producer_source("civil", original.province_code, "other")
    conflicting = encode_event(make_birth_event(type(original).model_validate(changed), source=other_office))
    resend_id = str(uuid.uuid4())
    identical = encode_event(make_birth_event(original, event_id=resend_id, source=other_office))
    await publish_raw(settings, [conflicting, identical], progress=False)

    letters = await eventually(lambda: dead_letters(service, settings), lambda d: conflicting in d, within=30,
                               what="the conflicting registration dead-lettered")
    reason = letters[conflicting][1]
    assert reason == CONFLICT_REASON == ("data.registration_number: conflict: registration already recorded "
                                         "with different data")
    assert identical not in letters

    async def resend_received() -> int:
        async with service.registry.unit_of_work() as session:
            return int(await session.scalar(select(func.count()).select_from(ReceivedEvent).where(
                ReceivedEvent.event_source == other_office,
                ReceivedEvent.event_id == resend_id)) or 0)

    await eventually(resend_received, lambda n: n == 1, within=30, what="the identical re-send acked")
    async with service.registry.unit_of_work() as session:
        rows = (await session.scalars(select(BirthRegistration)
                                      .where(BirthRegistration.registration_number == reg))).all()
        assert len(rows) == 1 and rows[0].payload == original.model_dump(mode="json")  # the first, untouched
        assert rows[0].child_person_id == child.id
        refreshed = await session.get(Person, child.id)
        assert refreshed is not None and refreshed.full_name == original.child.full_name
        per_stage = dict((await session.execute(
            select(Notification.stage, func.count()).where(Notification.citizen_person_id == child.id,
                                                           Notification.stage.in_(["birth_recorded",
                                                                                   "residence_registered"]))
            .group_by(Notification.stage))).all())
    assert per_stage == {"birth_recorded": 1, "residence_registered": 1}
    runs = [w async for w in service.client.list_workflows(
        f"WorkflowId = '{birth_workflow_id(original.province_code, reg)}'")]
    assert len(runs) == 1


async def test_the_same_number_in_two_provinces_is_two_registrations(settings: Settings, service: Any) -> None:
    reg = new_registration_number("P")
    a, b = _birth(53, reg), _birth(54, reg)
    assert a.province_code != b.province_code
    await publish_raw(settings, [encode_event(make_birth_event(a)), encode_event(make_birth_event(b))],
                      progress=False)

    async def completed() -> list[int]:
        async with service.registry.unit_of_work() as session:
            rows = (await session.execute(
                select(BirthRegistration.province_code, func.count(Notification.id))
                .join(Notification, Notification.citizen_person_id == BirthRegistration.child_person_id)
                .where(BirthRegistration.registration_number == reg)
                .group_by(BirthRegistration.province_code))).all()
        return [int(n) for _, n in rows]

    await eventually(completed, lambda c: len(c) == 2 and all(n >= ALL_STAGES for n in c), within=90,
                     what="both registrations through every stage")
    async with service.registry.unit_of_work() as session:
        workflows = set((await session.scalars(select(BirthRegistration.workflow_id)
                                               .where(BirthRegistration.registration_number == reg))).all())
    assert workflows == {birth_workflow_id(a.province_code, reg), birth_workflow_id(b.province_code, reg)}


async def test_an_id_number_of_someone_else_links_nobody_and_waits_for_a_person(
        settings: Settings, service: Any) -> None:
    fam, stranger = family(55), family(56).mother
    reg = new_registration_number("M")
    data = _birth(55, reg).model_dump(mode="json")
    data["mother"]["id_number"] = stranger.id_number  # a typo pointing at another woman; the name is the mother's
    payload = type(_birth(55, reg)).model_validate(data)
    await publish_raw(settings, [encode_event(make_birth_event(payload))], progress=False)
    handle = service.client.get_workflow_handle(birth_workflow_id(fam.province_code, reg))
    await wait_for_attention(handle, "mother-record-mismatch")
    child = await child_of(service, reg)

    async def notices() -> int:
        async with service.registry.unit_of_work() as session:
            return int(await session.scalar(select(func.count()).select_from(Notification)
                                            .where(Notification.citizen_person_id == child.id)) or 0)

    await eventually(notices, lambda n: n >= 2, within=60, what="the first notices sent")
    async with service.registry.unit_of_work() as session:
        stored = await session.get(Person, child.id)
        assert stored is not None and stored.mother_id is None and stored.father_id == fam.father.person_id
        assert stored.household_id is None
        assert await session.get(ResidenceRegistration, child.id) is None
        assert await session.scalar(select(func.count()).select_from(ResidencePeriod).where(
            ResidencePeriod.person_id == child.id)) == 0
        to_stranger = await session.scalar(
            select(func.count()).select_from(InboxMessage)
            .join(Notification, Notification.id == InboxMessage.notification_id)
            .where(Notification.citizen_person_id == child.id,
                   InboxMessage.recipient_person_id == stranger.person_id))
        assert to_stranger == 0
        match = await session.scalar(select(BirthRegistration.parent_match)
                                     .where(BirthRegistration.workflow_id == handle.id))
    assert match == {"mother": "mismatch-name", "father": "matched"}
