"""``vn.gov.civil.birth.registered``: the typed payload, parse/make, and the bridge's handler for births.

A civil-status office publishes one CloudEvent (structured JSON mode) per registered birth on the NATS
subject ``civil.<province>.birth_registered``. :func:`parse_birth_event` turns the raw message bytes into
validated models or raises :class:`InvalidEvent` listing *every* problem found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import AwareDatetime, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

import rules
from events.envelope import (
    AGENCY_CODE_PATTERN,
    VIETNAM_TZ,
    CloudEvent,
    Frozen,
    Name,
    PersonalIdNumber,
    PlaceText,
    ProvinceCode,
    StrictInt,
    Temporal,
    _fail,
    decode_event,
    in_utc_range,
    make_event,
    now_utc,
    parse_document,
    vietnam_today,
)
from registry.births import store_birth_registration
from registry.db import Registry
from rules.producers import producer_source
from workflows.contracts import BirthCase

BIRTH_REGISTERED: Final = "vn.gov.civil.birth.registered"
"""CloudEvents ``type`` of a registered birth."""

BIRTH_SUBJECT_EVENT: Final = "birth_registered"
"""Last token of the NATS subject ``civil.<province>.birth_registered``."""

BIRTH_DATASCHEMA: Final = "urn:lifeevents:schema:civil:birth_registered:1"
"""``$id`` of ``events/schemas/birth_registered.schema.json``, used as the CloudEvents ``dataschema``."""


REGISTRATION_CLOCK_SKEW: Final = timedelta(minutes=5)
"""How far in the future ``registered_at`` may lie (clock skew between the office and this service)."""


TIME_OF_DAY_PATTERN: Final = (r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.,][0-9]+)?)?"
                               r"([zZ]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?$")
"""What the model accepts as a time of day: HH:MM[:SS[.fraction]], an offset optional. JSON Schema's
``format: time`` requires the offset, so the published schema states this pattern instead."""

LocalTime = Annotated[time, WithJsonSchema({"type": "string", "pattern": TIME_OF_DAY_PATTERN})]


class Child(Frozen):
    full_name: Name
    sex: Literal["male", "female"]
    date_of_birth: Annotated[date, Temporal]
    time_of_birth: Annotated[LocalTime | None, Temporal] = Field(
        default=None, description="Local time of birth (Vietnam), if recorded."
    )
    place_of_birth: PlaceText = Field(description="Health facility or address where the child was born.")
    multiple_birth_order: Annotated[StrictInt, Field(ge=1, le=10)] = Field(
        default=1, description="Order of this child in a multiple birth (1 for a single birth)."
    )
    multiple_birth_size: Annotated[StrictInt, Field(ge=1, le=10)] = Field(
        default=1, description="Number of children born in this birth (1 for a single birth)."
    )

    # Reasons about dates of birth never quote the date: it identifies the child together with the subject.
    @field_validator("date_of_birth")
    @classmethod
    def _servable_date_of_birth(cls, value: date) -> date:
        earliest = rules.earliest_birth_year_covered()
        if value.year < earliest:
            raise _fail(
                "born_before_id_rules",
                "is before {earliest}, the earliest birth year the personal ID number rules cover "
                "(rules/data/personal_id.yaml)",
                earliest=earliest,
            )
        if value > vietnam_today():
            raise _fail("date_in_future", "date of birth is in the future (today in Asia/Ho_Chi_Minh)")
        return value

    @model_validator(mode="after")
    def _order_within_size(self) -> Child:
        if self.multiple_birth_order > self.multiple_birth_size:
            raise _fail(
                "multiple_birth",
                "order {order} in a multiple birth exceeds multiple_birth_size {size}",
                field="multiple_birth_order",
                order=self.multiple_birth_order,
                size=self.multiple_birth_size,
            )
        return self


class Parent(Frozen):
    id_number: PersonalIdNumber = Field(
        description="12-digit personal identification number (Decree 137/2015 Art. 13).",
        json_schema_extra={"pattern": "^[0-9]{12}$"},
    )
    full_name: Name


_PHONE = re.compile(r"\+?[0-9]{8,15}")
_PHONE_SCHEMA_PATTERN = f"^{_PHONE.pattern}$"
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


class Informant(Frozen):
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["phone"], "properties": {"phone": {"type": "string"}}},
                {"required": ["email"], "properties": {"email": {"type": "string"}}},
            ]
        }
    )

    phone: str | None = Field(
        default=None,
        description="Phone number: optional '+' then 8 to 15 digits (E.164 style, e.g. +84912345678).",
        json_schema_extra={"pattern": _PHONE_SCHEMA_PATTERN},
    )
    email: str | None = Field(
        default=None,
        description="E-mail address (plain syntax check).",
        json_schema_extra={"format": "email"},
    )
    preferred_language: Literal["vi", "en"] = "vi"

    @field_validator("phone", "email", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("phone")
    @classmethod
    def _phone_syntax(cls, value: str | None) -> str | None:
        if value is not None and not _PHONE.fullmatch(value):
            raise _fail("phone", "must be an optional '+' followed by 8 to 15 digits")
        return value

    @field_validator("email")
    @classmethod
    def _email_syntax(cls, value: str | None) -> str | None:
        if value is None:
            return None
        local, at, domain = value.rpartition("@")
        if (
            not at
            or len(value) > 254
            or len(local) > 64
            or not _EMAIL_LOCAL.fullmatch(local)
            or not _EMAIL_DOMAIN.fullmatch(domain)
        ):
            raise _fail("email", "is not a valid e-mail address")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> Informant:
        if self.phone is None and self.email is None:
            raise _fail("contact", "at least one of phone or email is required")
        return self


class BirthRegistered(Frozen):
    """Data of a ``vn.gov.civil.birth.registered`` event: one registered birth, as the office recorded it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registration_number: str = Field(
        pattern=r"^[A-Z0-9]{6,20}$",
        description="Number of the civil record: upper-case letters and digits, e.g. 2020B6E6YJB.",
    )
    registered_at: Annotated[AwareDatetime, Temporal] = Field(
        description="When the birth was registered (RFC 3339 with offset)."
    )
    office_code: str = Field(pattern=AGENCY_CODE_PATTERN, description="Code of the registering civil-status office.")
    province_code: ProvinceCode = Field(description="Code of the province where the birth was registered (e.g. 079).")
    child: Child
    mother: Parent
    father: Parent | None = None
    informant: Informant

    @field_validator("registered_at")
    @classmethod
    def _in_range_and_not_ahead(cls, value: datetime) -> datetime:
        in_utc_range(value)
        if value - now_utc() > REGISTRATION_CLOCK_SKEW:
            raise _fail("registered_in_future", "registration time is more than 5 minutes in the future")
        return value

    @model_validator(mode="after")
    def _plausible_age_at_registration(self) -> BirthRegistered:
        registered_on = self.registered_at.astimezone(VIETNAM_TZ).date()
        born = self.child.date_of_birth
        if born > registered_on:
            raise _fail(
                "born_after_registration",
                "date of birth is after the registration date (data.registered_at, in Asia/Ho_Chi_Minh)",
                field="child.date_of_birth",
            )
        if born < rules.earliest_plausible_birth_date(registered_on):
            raise _fail(
                "born_too_long_before_registration",
                "date of birth is more than {years} years before the registration date "
                "(plausibility limit in rules/data/civil_registration.yaml)",
                field="child.date_of_birth",
                years=rules.max_years_from_birth_to_registration(),
            )
        return self


# ------------------------------------------------------------------------------------ parse / make


def parse_birth_document(document: Mapping[str, Any]) -> tuple[CloudEvent, BirthRegistered]:
    """Validate a decoded birth-registered CloudEvent; :class:`InvalidEvent` lists all problems."""
    return parse_document(document, BIRTH_REGISTERED, BirthRegistered)


def parse_birth_event(raw: bytes) -> tuple[CloudEvent, BirthRegistered]:
    """Decode, validate and type a birth-registered CloudEvent; :class:`InvalidEvent` lists all problems."""
    return parse_birth_document(decode_event(raw))


def make_birth_event(
    payload: BirthRegistered,
    *,
    event_id: str | None = None,
    source: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """Wrap a payload in a CloudEvent (``time`` defaults to now, ``subject`` is the registration number)."""
    return make_event(payload, event_type=BIRTH_REGISTERED, dataschema=BIRTH_DATASCHEMA,
                      source=source or producer_source("civil", payload.province_code),
                      event_id=event_id, subject=payload.registration_number, time=time)


# ------------------------------------------------------------------------------------ bridge handler


class WorkflowStarter(Protocol):
    async def start_birth(self, case: BirthCase, workflow_id: str) -> None:
        """Start the birth workflow ``workflow_id``; a second start for the same registration must be a no-op."""


class BirthHandler:
    """Keeps the registration in the registry (once per province and number; a re-send with other data is
    dead-lettered as a conflict), then starts its workflow ``birth-<province>-<reg no>``."""

    event_type = BIRTH_REGISTERED
    subject_domain = "civil"
    subject_event = BIRTH_SUBJECT_EVENT

    def __init__(self, registry: Registry, starter: WorkflowStarter) -> None:
        self.registry = registry
        self.starter = starter

    def parse(self, document: Mapping[str, Any]) -> tuple[CloudEvent, BirthRegistered]:
        return parse_birth_document(document)

    async def handle(self, event: CloudEvent, payload: BirthRegistered, subject: str) -> None:
        stored = await store_birth_registration(self.registry, event, payload, subject)
        await self.starter.start_birth(BirthCase(registration_number=payload.registration_number,
                                                 province_code=payload.province_code), stored.workflow_id)
