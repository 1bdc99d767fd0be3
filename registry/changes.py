"""Moves and birth corrections as the bridge keeps them: matched to the registry, stored once per event."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

import rules
from registry.db import Registry
from registry.models import (
    BirthCorrection,
    BirthRegistration,
    DataAccess,
    Household,
    Person,
    ResidenceChange,
    ResidencePeriod,
)
from workflows.change_contracts import ChangeCase

if TYPE_CHECKING:  # the event modules import this one's ports only; this module reads their payloads
    from events.birth_corrected import BirthCorrected, RegisteredChild
    from events.envelope import CloudEvent
    from events.residence_changed import Mover, ResidenceChanged

AGENCY = "civil-status"


def move_workflow_id(change_id: uuid.UUID) -> str:
    return f"move-{change_id}"


def correction_workflow_id(change_id: uuid.UUID) -> str:
    return f"correction-{change_id}"


class RegistryMoveRecords:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def stored_move(self, event: CloudEvent) -> ChangeCase | None:
        async with self.registry.unit_of_work() as session:
            row = (await session.execute(
                select(ResidenceChange.id, ResidenceChange.person_id)
                .where(ResidenceChange.event_source == event.source, ResidenceChange.event_id == event.id))).first()
        return None if row is None else ChangeCase(change_id=row[0], person_id=row[1])

    async def find_mover(self, payload: ResidenceChanged) -> Mover | None:
        from events.residence_changed import Mover

        async with self.registry.unit_of_work() as session:
            person = await session.scalar(select(Person).where(Person.personal_id_number == payload.person_id_number))
            if person is None:
                return None
            session.add(DataAccess(citizen_person_id=person.id, agency=AGENCY, purpose="check a registered move",
                                   workflow_id=None, fields="ID number, household, residence period"))
            household_id = await session.scalar(
                select(Household.id).where(Household.household_number == payload.household_number))
            current = await session.scalar(
                select(ResidencePeriod).where(ResidencePeriod.person_id == person.id,
                                              ResidencePeriod.valid_to.is_(None))
                .order_by(ResidencePeriod.valid_from.desc()).limit(1))
            return Mover(person_id=person.id, date_of_birth=person.date_of_birth,
                         deceased=person.status == "deceased", household_id=household_id,
                         current_household_id=current.household_id if current else person.household_id,
                         current_since=current.valid_from if current else None)

    async def store_move(self, event: CloudEvent, payload: ResidenceChanged, mover: Mover) -> ChangeCase:
        assert mover.household_id is not None
        async with self.registry.unit_of_work() as session:
            await session.execute(
                insert(ResidenceChange)
                .values(id=uuid.uuid4(), event_source=event.source, event_id=event.id, person_id=mover.person_id,
                        household_id=mover.household_id, moved_on=payload.moved_on, office_code=payload.office_code,
                        province_code=payload.province_code)
                .on_conflict_do_nothing())
            change_id = await session.scalar(
                select(ResidenceChange.id).where(
                    (ResidenceChange.event_source == event.source) & (ResidenceChange.event_id == event.id)
                    | (ResidenceChange.person_id == mover.person_id)
                    & (ResidenceChange.household_id == mover.household_id)
                    & (ResidenceChange.moved_on == payload.moved_on)).limit(1))
        if change_id is None:
            raise RuntimeError("residence change vanished after insert")
        return ChangeCase(change_id=change_id, person_id=mover.person_id)


class RegistryCorrectionRecords:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def stored_correction(self, event: CloudEvent) -> ChangeCase | None:
        async with self.registry.unit_of_work() as session:
            row = (await session.execute(
                select(BirthCorrection.id, BirthCorrection.person_id)
                .where(BirthCorrection.event_source == event.source, BirthCorrection.event_id == event.id))).first()
        return None if row is None else ChangeCase(change_id=row[0], person_id=row[1])

    async def find_registered_child(self, payload: BirthCorrected) -> RegisteredChild | None:
        from events.birth_corrected import RegisteredChild

        async with self.registry.unit_of_work() as session:
            reg = await session.scalar(select(BirthRegistration).where(
                BirthRegistration.province_code == payload.province_code,
                BirthRegistration.registration_number == payload.registration_number))
            if reg is None:
                return None
            registered_on = rules.local_date(reg.registered_at)
            child = await session.get(Person, reg.child_person_id) if reg.child_person_id else None
            if child is None:
                return RegisteredChild(registration_id=reg.id, registered_on=registered_on, person_id=None,
                                       current={})
            session.add(DataAccess(citizen_person_id=child.id, agency=AGENCY, purpose="check a birth correction",
                                   workflow_id=None, fields="full name, date of birth, sex"))
            return RegisteredChild(registration_id=reg.id, registered_on=registered_on, person_id=child.id,
                                   current={"full_name": child.full_name, "date_of_birth": child.date_of_birth,
                                            "sex": child.sex})

    async def store_correction(self, event: CloudEvent, payload: BirthCorrected,
                               child: RegisteredChild) -> ChangeCase:
        assert child.person_id is not None
        async with self.registry.unit_of_work() as session:
            await session.execute(
                insert(BirthCorrection)
                .values(id=uuid.uuid4(), event_source=event.source, event_id=event.id,
                        registration_id=child.registration_id, person_id=child.person_id,
                        office_code=payload.office_code, corrected_at=payload.corrected_at,
                        requested=payload.corrected.model_dump(mode="json", exclude_none=True))
                .on_conflict_do_nothing(constraint="uq_birth_corrections_event"))
            change_id = await session.scalar(select(BirthCorrection.id).where(
                BirthCorrection.event_source == event.source, BirthCorrection.event_id == event.id))
        if change_id is None:
            raise RuntimeError("birth correction vanished after insert")
        return ChangeCase(change_id=change_id, person_id=child.person_id)
