"""``vn.gov.civil.death.registered``: a civil-status office registered a death (Decree 63/2024, group 2).

Published on ``civil.<province>.death_registered``. The bridge finds the deceased in the registry by personal ID
number (and name), keeps the registration once per person (a death recorded twice is harmless) and starts
``DeathRegistrationWorkflow`` with the id ``death-<person uuid>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Final, Protocol

from pydantic import AwareDatetime, Field, field_validator, model_validator

from events.envelope import (
    AGENCY_CODE_PATTERN,
    VIETNAM_TZ,
    CloudEvent,
    Frozen,
    InvalidEvent,
    Name,
    PastDate,
    PersonalIdNumber,
    ProvinceCode,
    Temporal,
    _fail,
    decode_event,
    in_utc_range,
    make_event,
    parse_document,
)
from rules.producers import producer_source

DEATH_REGISTERED: Final = "vn.gov.civil.death.registered"
DEATH_SUBJECT_EVENT: Final = "death_registered"
DEATH_DATASCHEMA: Final = "urn:lifeevents:schema:civil:death_registered:1"

UNKNOWN_DECEASED: Final = "data.deceased.person_id_number: no citizen with this personal ID number"
NAME_MISMATCH: Final = "data.deceased.full_name: does not match the registry's record for this ID number"
BEFORE_BIRTH: Final = "data.deceased.date_of_death: is before the citizen's date of birth"
ALREADY_DECEASED_OTHER_DATE: Final = ("data.deceased.date_of_death: the citizen is already recorded deceased on "
                                      "another date (a correction is needed, not a second registration)")


class Deceased(Frozen):
    person_id_number: PersonalIdNumber = Field(json_schema_extra={"pattern": "^[0-9]{12}$"},
                                               description="Personal identification number of the deceased.")
    full_name: Name
    date_of_death: PastDate



class Declarant(Frozen):
    """Who declared the death (and receives the funeral allowance)."""

    full_name: Name
    id_number: PersonalIdNumber | None = Field(default=None, json_schema_extra={"pattern": "^[0-9]{12}$"})
    relationship: str | None = Field(default=None, max_length=40, description="e.g. spouse, child, parent.")


class DeathRegistered(Frozen):
    """Data of a ``vn.gov.civil.death.registered`` event."""

    registration_number: str = Field(pattern=r"^[A-Z0-9]{6,20}$", description="Number of the death record.")
    registered_at: Annotated[AwareDatetime, Temporal, Field(description="When the death was registered.")]
    office_code: str = Field(pattern=AGENCY_CODE_PATTERN, description="Code of the registering office.")
    province_code: ProvinceCode = Field(description="Province of the registering office (e.g. 079).")
    deceased: Deceased
    declarant: Declarant

    @field_validator("registered_at")
    @classmethod
    def _representable(cls, value: datetime) -> datetime:
        return in_utc_range(value)

    @model_validator(mode="after")
    def _died_before_registration(self) -> DeathRegistered:
        if self.deceased.date_of_death > self.registered_at.astimezone(VIETNAM_TZ).date():
            raise _fail("died_after_registration", "is after the registration date",
                        field="deceased.date_of_death")
        return self


def parse_death_document(document: Mapping[str, Any]) -> tuple[CloudEvent, DeathRegistered]:
    return parse_document(document, DEATH_REGISTERED, DeathRegistered)


def parse_death_event(raw: bytes) -> tuple[CloudEvent, DeathRegistered]:
    return parse_death_document(decode_event(raw))


def make_death_event(payload: DeathRegistered, *, event_id: str | None = None, source: str | None = None,
                     time: datetime | None = None) -> CloudEvent:
    return make_event(payload, event_type=DEATH_REGISTERED, dataschema=DEATH_DATASCHEMA,
                      source=source or producer_source("civil", payload.province_code),
                      event_id=event_id, subject=payload.registration_number, time=time)


@dataclass(frozen=True)
class DeceasedCitizen:
    person_id: uuid.UUID
    date_of_birth: date
    name_matches: bool
    recorded_death: date | None
    """The date of death already on record (a second registration of the same death), if any."""


class DeathRecords(Protocol):
    async def find_deceased(self, payload: DeathRegistered) -> DeceasedCitizen | None: ...

    async def store_death(self, event: CloudEvent, payload: DeathRegistered, citizen: DeceasedCitizen) -> None:
        """Keep the registration (once per person: a second one for the same death changes nothing)."""


class DeathStarter(Protocol):
    async def start_death(self, person_id: uuid.UUID, province_code: str) -> None:
        """Start DeathRegistrationWorkflow `death-<person uuid>`; a second start is a no-op."""


class DeathHandler:
    event_type = DEATH_REGISTERED
    subject_domain = "civil"
    subject_event = DEATH_SUBJECT_EVENT

    def __init__(self, records: DeathRecords, starter: DeathStarter) -> None:
        self.records = records
        self.starter = starter

    def parse(self, document: Mapping[str, Any]) -> tuple[CloudEvent, DeathRegistered]:
        return parse_death_document(document)

    async def handle(self, event: CloudEvent, payload: DeathRegistered, subject: str) -> None:
        citizen = await self.records.find_deceased(payload)
        if citizen is None:
            raise InvalidEvent(UNKNOWN_DECEASED)
        if not citizen.name_matches:
            raise InvalidEvent(NAME_MISMATCH)
        if payload.deceased.date_of_death < citizen.date_of_birth:
            raise InvalidEvent(BEFORE_BIRTH)
        if citizen.recorded_death is not None and citizen.recorded_death != payload.deceased.date_of_death:
            raise InvalidEvent(ALREADY_DECEASED_OTHER_DATE)
        await self.records.store_death(event, payload, citizen)
        await self.starter.start_death(citizen.person_id, payload.province_code)
