"""``vn.gov.civil.birth.corrected``: the civil-status office corrected a registered birth (Law on Civil Status
Art. 26-28): the child's full name, date of birth and/or sex.

Published on ``civil.<province>.birth_corrected`` (the registration's province). The bridge finds the registration
(province + number), checks the corrected date of birth with the same rules as a birth, keeps the correction once
per event (source + id) and starts ``correction-<correction uuid>``, which propagates it to every agency once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import AwareDatetime, Field, field_validator, model_validator

import rules
from events.birth_registered import REGISTRATION_CLOCK_SKEW, Child
from events.envelope import (
    AGENCY_CODE_PATTERN,
    CloudEvent,
    Frozen,
    InvalidEvent,
    Name,
    ProvinceCode,
    Temporal,
    _fail,
    _reason,
    decode_event,
    in_utc_range,
    make_event,
    now_utc,
    parse_document,
)
from rules.producers import producer_source
from workflows.change_contracts import ChangeCase

BIRTH_CORRECTED: Final = "vn.gov.civil.birth.corrected"
CORRECTION_SUBJECT_EVENT: Final = "birth_corrected"
CORRECTION_DATASCHEMA: Final = "urn:lifeevents:schema:civil:birth_corrected:1"
CORRECTABLE: Final = ("full_name", "date_of_birth", "sex")

UNKNOWN_REGISTRATION: Final = "data.registration_number: no birth registration with this number in this province"
NOTHING_CHANGED: Final = "data.corrected: every field equals what the registry holds"
BORN_AFTER_REGISTRATION: Final = _reason(
    "data.corrected.date_of_birth",
    "date of birth is after the registration date (the registration's registered_at, in Asia/Ho_Chi_Minh)")


def born_too_long_before() -> str:
    return _reason("data.corrected.date_of_birth",
                   f"date of birth is more than {rules.max_years_from_birth_to_registration()} years before the "
                   "registration date (plausibility limit in rules/data/civil_registration.yaml)")


class CorrectedFields(Frozen):
    """The corrected values; a field left out (or null) is not corrected. At least one is given."""

    full_name: Name | None = None
    date_of_birth: Annotated[date | None, Temporal] = None
    sex: Literal["male", "female"] | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _servable_date_of_birth(cls, value: date | None) -> date | None:
        return None if value is None else Child._servable_date_of_birth(value)  # the birth event's rules

    @model_validator(mode="after")
    def _something(self) -> CorrectedFields:
        if all(getattr(self, name) is None for name in CORRECTABLE):
            raise _fail("nothing_corrected", "at least one of full_name, date_of_birth or sex is required")
        return self

    def given(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CORRECTABLE if getattr(self, name) is not None}


class BirthCorrected(Frozen):
    """Data of a ``vn.gov.civil.birth.corrected`` event: corrections to one registered birth."""

    registration_number: str = Field(pattern=r"^[A-Z0-9]{6,20}$",
                                     description="Number of the corrected birth registration.")
    province_code: ProvinceCode = Field(description="Province of the birth registration (e.g. 079).")
    office_code: str = Field(pattern=AGENCY_CODE_PATTERN, description="Code of the correcting civil-status office.")
    corrected_at: Annotated[AwareDatetime, Temporal] = Field(
        description="When the correction was registered (RFC 3339 with offset).")
    corrected: CorrectedFields

    @field_validator("corrected_at")
    @classmethod
    def _not_ahead(cls, value: datetime) -> datetime:
        in_utc_range(value)
        if value - now_utc() > REGISTRATION_CLOCK_SKEW:
            raise _fail("corrected_in_future", "correction time is more than 5 minutes in the future")
        return value


def parse_correction_document(document: Mapping[str, Any]) -> tuple[CloudEvent, BirthCorrected]:
    return parse_document(document, BIRTH_CORRECTED, BirthCorrected)


def parse_correction_event(raw: bytes) -> tuple[CloudEvent, BirthCorrected]:
    return parse_correction_document(decode_event(raw))


def make_correction_event(payload: BirthCorrected, *, event_id: str | None = None,
                          source: str | None = None, time: datetime | None = None) -> CloudEvent:
    """Wrap a payload in a CloudEvent (``subject`` is the registration number, as for the birth)."""
    return make_event(payload, event_type=BIRTH_CORRECTED, dataschema=CORRECTION_DATASCHEMA,
                      source=source or producer_source("civil", payload.province_code),
                      event_id=event_id, subject=payload.registration_number, time=time)


# ------------------------------------------------------------------------------------ bridge handler


@dataclass(frozen=True)
class RegisteredChild:
    """The registration and what the civil registry holds for the child now."""

    registration_id: uuid.UUID
    registered_on: date
    person_id: uuid.UUID | None
    """None until `record_birth` has created the child's record (the correction then waits: redelivered)."""
    current: Mapping[str, Any]
    """full_name, date_of_birth, sex as recorded."""


class RegistrationNotRecorded(Exception):
    """The birth is registered but its child record is not made yet: the event is redelivered later."""


def correction_reasons(child: RegisteredChild, corrected: CorrectedFields) -> list[str]:
    """Why the registry cannot accept this correction (empty: it can)."""
    reasons = []
    born = corrected.date_of_birth
    if born is not None:
        if born > child.registered_on:
            reasons.append(BORN_AFTER_REGISTRATION)
        elif born < rules.earliest_plausible_birth_date(child.registered_on):
            reasons.append(born_too_long_before())
    if all(child.current.get(name) == value for name, value in corrected.given().items()):
        reasons.append(NOTHING_CHANGED)
    return reasons


class CorrectionRecords(Protocol):
    async def stored_correction(self, event: CloudEvent) -> ChangeCase | None:
        """The correction already kept for this event (source + id), if any."""

    async def find_registered_child(self, payload: BirthCorrected) -> RegisteredChild | None: ...

    async def store_correction(self, event: CloudEvent, payload: BirthCorrected,
                               child: RegisteredChild) -> ChangeCase: ...


class CorrectionStarter(Protocol):
    async def start_correction(self, case: ChangeCase, province_code: str) -> None:
        """Start ``correction-<correction uuid>``; a second start of the same correction is a no-op."""


class BirthCorrectedHandler:
    event_type = BIRTH_CORRECTED
    subject_domain = "civil"
    subject_event = CORRECTION_SUBJECT_EVENT

    def __init__(self, records: CorrectionRecords, starter: CorrectionStarter) -> None:
        self.records = records
        self.starter = starter

    def parse(self, document: Mapping[str, Any]) -> tuple[CloudEvent, BirthCorrected]:
        return parse_correction_document(document)

    async def handle(self, event: CloudEvent, payload: BirthCorrected, subject: str) -> None:
        case = await self.records.stored_correction(event)  # a redelivery: the registry may show it applied
        if case is None:
            child = await self.records.find_registered_child(payload)
            if child is None:
                raise InvalidEvent(UNKNOWN_REGISTRATION)
            if child.person_id is None:
                raise RegistrationNotRecorded("the child's record is not made yet")
            reasons = correction_reasons(child, payload.corrected)
            if reasons:
                raise InvalidEvent(reasons)
            case = await self.records.store_correction(event, payload, child)
        await self.starter.start_correction(case, payload.province_code)
