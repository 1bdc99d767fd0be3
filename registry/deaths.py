"""Storing what the civil-status office sent for a death: the deceased matched by ID number and name, kept once
per person (a death recorded twice is harmless)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from registry.db import Registry
from registry.matching import same_name
from registry.models import DataAccess, DeathRegistration, Person

if TYPE_CHECKING:  # the event module imports this one's port
    from events.death_registered import DeathRegistered, DeceasedCitizen
    from events.envelope import CloudEvent

AGENCY = "civil-status"


class RegistryDeathRecords:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def find_deceased(self, payload: DeathRegistered) -> DeceasedCitizen | None:
        from events.death_registered import DeceasedCitizen

        async with self.registry.unit_of_work() as session:
            person = await session.scalar(select(Person).where(
                Person.personal_id_number == payload.deceased.person_id_number))
            if person is None:
                return None
            session.add(DataAccess(citizen_person_id=person.id, agency=AGENCY, purpose="match a registered death",
                                   workflow_id=None, fields="ID number, full name, date of birth, date of death"))
            return DeceasedCitizen(person_id=person.id, date_of_birth=person.date_of_birth,
                                   name_matches=same_name(person.full_name, payload.deceased.full_name),
                                   recorded_death=person.date_of_death)

    async def store_death(self, event: CloudEvent, payload: DeathRegistered, citizen: DeceasedCitizen) -> None:
        async with self.registry.unit_of_work() as session:
            declarant = None
            if payload.declarant.id_number:
                declarant = await session.scalar(select(Person.id).where(
                    Person.personal_id_number == payload.declarant.id_number))
            await session.execute(insert(DeathRegistration).values(
                registration_number=payload.registration_number, province_code=payload.province_code,
                event_source=event.source, event_id=event.id, person_id=citizen.person_id,
                date_of_death=payload.deceased.date_of_death, declarant_person_id=declarant,
                payload=payload.model_dump(mode="json")).on_conflict_do_nothing())
