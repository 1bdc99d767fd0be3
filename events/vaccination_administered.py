"""``vn.gov.health.vaccination.administered``: a health station reports a dose it gave to a child.

Published on the NATS subject ``health.<province>.vaccination_administered``. The bridge matches the child by
personal ID number in the registry, keeps the report once per event (source + id) and signals the citizen's
lifecycle workflow with the report's id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Final, Protocol

from pydantic import Field, field_validator

import rules
from events.envelope import (
    AGENCY_CODE_PATTERN,
    CloudEvent,
    Frozen,
    InvalidEvent,
    PastDate,
    PersonalIdNumber,
    ProvinceCode,
    StrictInt,
    _echo,
    _fail,
    decode_event,
    make_event,
    parse_document,
)
from registry.vaccinations import Citizen
from rules.producers import producer_source
from workflows.lifecycle_client import citizen_workflow_id

VACCINATION_ADMINISTERED: Final = "vn.gov.health.vaccination.administered"
"""CloudEvents ``type`` of a reported dose."""

VACCINATION_SUBJECT_EVENT: Final = "vaccination_administered"
"""Last token of the NATS subject ``health.<province>.vaccination_administered``."""

VACCINATION_DATASCHEMA: Final = "urn:lifeevents:schema:health:vaccination_administered:1"
"""``$id`` of ``events/schemas/vaccination_administered.schema.json``."""


UNKNOWN_CITIZEN: Final = "data.person_id_number: no citizen with this personal ID number"
BEFORE_BIRTH: Final = "data.administered_on: is before the child's date of birth"
DECEASED: Final = "data.person_id_number: the citizen's death is recorded; the report is kept here, not applied"


@cache
def vaccine_codes() -> frozenset[str]:
    """Codes of the national immunization schedule (rules/data/vaccination_schedule.yaml)."""
    return frozenset(rules.vaccine_names())


class VaccinationAdministered(Frozen):
    """Data of a ``vn.gov.health.vaccination.administered`` event: one dose given to one child."""

    person_id_number: PersonalIdNumber = Field(
        description="The child's 12-digit personal identification number (Decree 137/2015 Art. 13).",
        json_schema_extra={"pattern": "^[0-9]{12}$"},
    )
    vaccine: str = Field(
        pattern=r"^[A-Z0-9_]{1,20}$",
        description="Vaccine code of the national immunization schedule (rules/data/vaccination_schedule.yaml), "
                    "e.g. DPT_VGB_HIB.",
    )
    dose: Annotated[StrictInt, Field(ge=1, le=99)] = Field(description="1-based dose number of that vaccine.")
    administered_on: PastDate = Field(description="Day the dose was given (ISO 8601 date).")
    health_station_code: str = Field(pattern=AGENCY_CODE_PATTERN, description="Code of the health station.")
    province_code: ProvinceCode = Field(description="Code of the province of the health station (e.g. 079).")

    @field_validator("vaccine")
    @classmethod
    def _scheduled_vaccine(cls, value: str) -> str:
        if value not in vaccine_codes():
            raise _fail("vaccine", "unknown vaccine code {code} (rules/data/vaccination_schedule.yaml)",
                        code=_echo(value))
        return value



def parse_vaccination_document(document: Mapping[str, Any]) -> tuple[CloudEvent, VaccinationAdministered]:
    """Validate a decoded vaccination-administered CloudEvent; :class:`InvalidEvent` lists all problems."""
    return parse_document(document, VACCINATION_ADMINISTERED, VaccinationAdministered)


def parse_vaccination_event(raw: bytes) -> tuple[CloudEvent, VaccinationAdministered]:
    return parse_vaccination_document(decode_event(raw))


def make_vaccination_event(payload: VaccinationAdministered, *, event_id: str | None = None,
                           source: str | None = None, time: datetime | None = None) -> CloudEvent:
    """Wrap a payload in a CloudEvent; no ``subject`` (it would carry the ID number)."""
    return make_event(payload, event_type=VACCINATION_ADMINISTERED, dataschema=VACCINATION_DATASCHEMA,
                      
                      source=source or producer_source("health", payload.province_code), event_id=event_id, time=time)


# ------------------------------------------------------------------------------------ bridge handler


class VaccinationRecords(Protocol):
    async def find_citizen(self, personal_id_number: str) -> Citizen | None: ...

    async def store_report(self, event: CloudEvent, payload: VaccinationAdministered, citizen: Citizen,
                           workflow_id: str) -> uuid.UUID:
        """Keep the report once per event (source + id); the same event always gives the same report id."""


class LifecycleSignaller(Protocol):
    async def dose_reported(self, person_id: uuid.UUID, report_id: uuid.UUID) -> None:
        """Tell the citizen's lifecycle about the report (starting it if needed); it applies a report once."""


class VaccinationHandler:
    """Matches the child, keeps the report, then signals the lifecycle (again on redelivery: same report id)."""

    event_type = VACCINATION_ADMINISTERED
    subject_domain = "health"
    subject_event = VACCINATION_SUBJECT_EVENT

    def __init__(self, records: VaccinationRecords, lifecycles: LifecycleSignaller) -> None:
        self.records = records
        self.lifecycles = lifecycles

    def parse(self, document: Mapping[str, Any]) -> tuple[CloudEvent, VaccinationAdministered]:
        return parse_vaccination_document(document)

    async def handle(self, event: CloudEvent, payload: VaccinationAdministered, subject: str) -> None:
        citizen = await self.records.find_citizen(payload.person_id_number)
        if citizen is None:
            raise InvalidEvent(UNKNOWN_CITIZEN)
        if payload.administered_on < citizen.date_of_birth:
            raise InvalidEvent(BEFORE_BIRTH)
        if citizen.deceased:  # the lifecycle has ended: nothing to re-plan, nothing to remind
            raise InvalidEvent(DECEASED)
        report_id = await self.records.store_report(event, payload, citizen,
                                                    citizen_workflow_id(citizen.person_id))
        await self.lifecycles.dose_reported(citizen.person_id, report_id)
