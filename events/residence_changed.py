"""``vn.gov.civil.residence.changed``: the civil-status office registered a citizen's move to another household.

Published on ``civil.<province>.residence_changed``. The event names the household (households are in the
registry), never an address. The bridge matches the citizen by personal ID number, checks the move against the
registry (unknown citizen or household, a death on record, a date before birth or before the current residence),
keeps it once (event source + id, and once per person, household and day) and starts ``move-<change uuid>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Protocol

from pydantic import Field

from events.envelope import (
    AGENCY_CODE_PATTERN,
    CloudEvent,
    Frozen,
    InvalidEvent,
    PastDate,
    PersonalIdNumber,
    ProvinceCode,
    decode_event,
    make_event,
    parse_document,
)
from rules.producers import producer_source
from workflows.change_contracts import ChangeCase

RESIDENCE_CHANGED: Final = "vn.gov.civil.residence.changed"
RESIDENCE_SUBJECT_EVENT: Final = "residence_changed"
RESIDENCE_DATASCHEMA: Final = "urn:lifeevents:schema:civil:residence_changed:1"
HOUSEHOLD_NUMBER_PATTERN: Final = r"^[A-Za-z0-9-]{1,32}$"

UNKNOWN_CITIZEN: Final = "data.person_id_number: no citizen with this personal ID number"
UNKNOWN_HOUSEHOLD: Final = "data.household_number: no household with this number"
DECEASED: Final = "data.person_id_number: the citizen's death is registered"
BEFORE_BIRTH: Final = "data.moved_on: is before the citizen's date of birth"
BEFORE_CURRENT: Final = "data.moved_on: is before the start of the citizen's current residence"
SAME_HOUSEHOLD: Final = "data.household_number: the citizen already lives in this household"


class ResidenceChanged(Frozen):
    """Data of a ``vn.gov.civil.residence.changed`` event: one citizen moved to another household."""

    person_id_number: PersonalIdNumber = Field(
        description="The citizen's 12-digit personal identification number (Decree 137/2015 Art. 13).",
        json_schema_extra={"pattern": "^[0-9]{12}$"},
    )
    household_number: str = Field(pattern=HOUSEHOLD_NUMBER_PATTERN,
                                  description="Number of the household the citizen now lives in (in the registry).")
    moved_on: PastDate = Field(description="Day of the move (ISO 8601 date).")
    office_code: str = Field(pattern=AGENCY_CODE_PATTERN, description="Code of the registering civil-status office.")
    province_code: ProvinceCode = Field(description="Code of the province of the office (e.g. 079).")



def parse_residence_document(document: Mapping[str, Any]) -> tuple[CloudEvent, ResidenceChanged]:
    return parse_document(document, RESIDENCE_CHANGED, ResidenceChanged)


def parse_residence_event(raw: bytes) -> tuple[CloudEvent, ResidenceChanged]:
    return parse_residence_document(decode_event(raw))


def make_residence_event(payload: ResidenceChanged, *, event_id: str | None = None,
                         source: str | None = None, time: datetime | None = None) -> CloudEvent:
    """Wrap a payload in a CloudEvent; no ``subject`` (it would carry the ID number)."""
    return make_event(payload, event_type=RESIDENCE_CHANGED, dataschema=RESIDENCE_DATASCHEMA,
                      source=source or producer_source("civil", payload.province_code),
                      event_id=event_id, time=time)


# ------------------------------------------------------------------------------------ bridge handler


@dataclass(frozen=True)
class Mover:
    """What the registry says about the citizen and the household a move names (no personal data leaves it)."""

    person_id: uuid.UUID
    date_of_birth: date
    deceased: bool
    household_id: uuid.UUID | None
    """The named household, None when the registry has no such number."""
    current_household_id: uuid.UUID | None
    current_since: date | None
    """Start of the open residence period."""


def move_reasons(mover: Mover, moved_on: date) -> list[str]:
    """Why the registry cannot accept this move (empty: it can)."""
    reasons = []
    if mover.household_id is None:
        reasons.append(UNKNOWN_HOUSEHOLD)
    if mover.deceased:
        reasons.append(DECEASED)
    if moved_on < mover.date_of_birth:
        reasons.append(BEFORE_BIRTH)
    elif mover.current_since is not None and moved_on < mover.current_since:
        reasons.append(BEFORE_CURRENT)
    if mover.household_id is not None and mover.household_id == mover.current_household_id:
        reasons.append(SAME_HOUSEHOLD)
    return reasons


class MoveRecords(Protocol):
    async def stored_move(self, event: CloudEvent) -> ChangeCase | None:
        """The change already kept for this event (source + id), if any."""

    async def find_mover(self, payload: ResidenceChanged) -> Mover | None:
        """The citizen by personal ID number (None: unknown) and the named household."""

    async def store_move(self, event: CloudEvent, payload: ResidenceChanged, mover: Mover) -> ChangeCase:
        """Keep the move once (per event, and per person + household + day); the same move gives the same id."""


class ChangeStarter(Protocol):
    async def start_move(self, case: ChangeCase, province_code: str) -> None:
        """Start ``move-<change uuid>``; a second start of the same change is a no-op."""


class ResidenceChangedHandler:
    """Validates the move against the registry, keeps it once, then starts the move workflow (again on
    redelivery: same change, no second workflow)."""

    event_type = RESIDENCE_CHANGED
    subject_domain = "civil"
    subject_event = RESIDENCE_SUBJECT_EVENT

    def __init__(self, records: MoveRecords, starter: ChangeStarter) -> None:
        self.records = records
        self.starter = starter

    def parse(self, document: Mapping[str, Any]) -> tuple[CloudEvent, ResidenceChanged]:
        return parse_residence_document(document)

    async def handle(self, event: CloudEvent, payload: ResidenceChanged, subject: str) -> None:
        case = await self.records.stored_move(event)  # a redelivery: the registry may already show the move
        if case is None:
            mover = await self.records.find_mover(payload)
            if mover is None:
                raise InvalidEvent(UNKNOWN_CITIZEN)
            reasons = move_reasons(mover, payload.moved_on)
            if reasons:
                raise InvalidEvent(reasons)
            case = await self.records.store_move(event, payload, mover)
        await self.starter.start_move(case, payload.province_code)
