"""Dose reports from health stations: matched to the citizen by personal ID number, kept once per event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from activities.common import log_access
from registry.db import Registry
from registry.models import Person, VaccinationReport

if TYPE_CHECKING:  # the event module imports this one (its bridge handler stores through it)
    from events.envelope import CloudEvent
    from events.vaccination_administered import VaccinationAdministered

AGENCY = "health"
PURPOSE = "match a reported vaccination dose to the citizen"


@dataclass(frozen=True)
class Citizen:
    person_id: uuid.UUID
    date_of_birth: date
    deceased: bool = False


class RegistryVaccinationRecords:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def find_citizen(self, personal_id_number: str) -> Citizen | None:
        async with self.registry.unit_of_work() as session:
            row = (await session.execute(select(Person.id, Person.date_of_birth, Person.status)
                                         .where(Person.personal_id_number == personal_id_number))).first()
        return None if row is None else Citizen(person_id=row[0], date_of_birth=row[1],
                                                deceased=row[2] == "deceased")

    async def store_report(self, event: CloudEvent, payload: VaccinationAdministered, citizen: Citizen,
                           workflow_id: str) -> uuid.UUID:
        """The report's id; the same event (source + id) delivered again gives the same id, stored once."""
        async with self.registry.unit_of_work() as session:
            await session.execute(
                insert(VaccinationReport)
                .values(id=uuid.uuid4(), event_source=event.source, event_id=event.id, person_id=citizen.person_id,
                        vaccine=payload.vaccine, dose=payload.dose, administered_on=payload.administered_on,
                        health_station_code=payload.health_station_code, province_code=payload.province_code)
                .on_conflict_do_nothing(constraint="uq_vaccination_reports_event"))
            report_id = await session.scalar(
                select(VaccinationReport.id)
                .where(VaccinationReport.event_source == event.source, VaccinationReport.event_id == event.id))
            log_access(session, citizen=citizen.person_id, agency=AGENCY, purpose=f"{PURPOSE} (report {report_id})",
                       workflow_id=workflow_id, fields="personal_id_number")
        if report_id is None:  # only if the row was deleted between the two statements
            raise RuntimeError("vaccination report vanished after insert")
        return report_id
