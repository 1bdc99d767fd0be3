"""Civil-status events: the CloudEvents 1.0 envelope and the typed ``birth registered`` payload.

A civil-status office publishes one CloudEvent (structured JSON mode) per registered birth on the NATS
subject ``civil.<province>.birth_registered``. :func:`parse_birth_event` turns the raw message bytes into
validated models or raises :class:`InvalidEvent` listing *every* problem found.

Reasons in :class:`InvalidEvent` end up in logs and dead-letter headers, so they name the field path and the
rule that failed, never a personal value (names, ID numbers, phone numbers, e-mail addresses). They are also
kept to printable ASCII so that they are safe as a message header value.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

import rules

__all__ = [
    "BIRTH_DATASCHEMA",
    "BIRTH_REGISTERED",
    "BIRTH_SUBJECT_EVENT",
    "BirthRegistered",
    "Child",
    "CloudEvent",
    "Informant",
    "InvalidEvent",
    "Name",
    "Parent",
    "civil_subject",
    "encode_event",
    "make_birth_event",
    "parse_birth_event",
    "validation_reasons",
]

BIRTH_REGISTERED: Final = "vn.gov.civil.birth.registered"
"""CloudEvents ``type`` of a registered birth."""

BIRTH_SUBJECT_EVENT: Final = "birth_registered"
"""Last token of the NATS subject ``civil.<province>.birth_registered``."""

BIRTH_DATASCHEMA: Final = "urn:lifeevents:schema:civil:birth_registered:1"
"""``$id`` of ``events/schemas/birth_registered.schema.json``, used as the CloudEvents ``dataschema``."""

CLOUDEVENT_SCHEMA_ID: Final = "urn:lifeevents:schema:cloudevents:1.0"
"""``$id`` of ``events/schemas/cloudevent.schema.json``."""

DEFAULT_SOURCE: Final = "urn:vn:civil-status:office"

REGISTRATION_CLOCK_SKEW: Final = timedelta(minutes=5)
"""How far in the future ``registered_at`` may lie (clock skew between the office and this service)."""


def _vietnam_tz() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Ho_Chi_Minh")
    except Exception:  # no tz database on this host: Vietnam has used UTC+7 without DST since 1975
        return timezone(timedelta(hours=7), "ICT")


VIETNAM_TZ: Final[tzinfo] = _vietnam_tz()


def _now_utc() -> datetime:
    """The current time (a seam for tests)."""
    return datetime.now(UTC)


def civil_subject(province_code: str, event: str = BIRTH_SUBJECT_EVENT) -> str:
    """NATS subject of a civil-status event: ``civil.<province>.<event>``."""
    for token, what in ((province_code, "province code"), (event, "event")):
        if not token or any(c in token for c in ".*> \t\r\n"):
            raise ValueError(f"{what} {token!r} is not a valid NATS subject token")
    return f"civil.{province_code}.{event}"


# --------------------------------------------------------------------------------------------- errors


class InvalidEvent(Exception):
    """An event that cannot be accepted; ``reasons`` lists every problem as ``"<field path>: <rule>"``."""

    def __init__(self, reasons: Sequence[str] | str) -> None:
        self.reasons: list[str] = [reasons] if isinstance(reasons, str) else list(reasons)
        super().__init__(self.reasons)

    def __str__(self) -> str:
        return "; ".join(self.reasons)


_MAX_REASON = 300
_MAX_ECHO = 80


def _safe_text(text: str, limit: int = _MAX_REASON) -> str:
    """Printable ASCII only (header-safe): control characters become ``?``, other non-ASCII is escaped."""
    out: list[str] = []
    for ch in text:
        if " " <= ch <= "~":
            out.append(ch)
        elif unicodedata.category(ch).startswith("C"):
            out.append("?")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    safe = "".join(out)
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def _echo(value: object) -> str:
    """A short, header-safe rendering of a non-personal value (an event type, a code) for a reason."""
    return _safe_text(repr(value), _MAX_ECHO)


def _reason(path: str, message: str) -> str:
    return _safe_text(f"{path}: {message}")


# Messages for pydantic's built-in error types: they state the rule and never echo the input.
_MESSAGES: Final[Mapping[str, Callable[[Mapping[str, Any]], str]]] = {
    "missing": lambda ctx: "is required",
    "extra_forbidden": lambda ctx: "is not a known field",
    "string_type": lambda ctx: "must be a string",
    "int_type": lambda ctx: "must be an integer",
    "model_type": lambda ctx: "must be an object",
    "model_attributes_type": lambda ctx: "must be an object",
    "dict_type": lambda ctx: "must be an object",
    "timezone_aware": lambda ctx: "must include a timezone offset",
    "string_pattern_mismatch": lambda ctx: f"must match the pattern {ctx.get('pattern')}",
    "too_short": lambda ctx: _length_message("at least", ctx.get("min_length")),
    "string_too_short": lambda ctx: _length_message("at least", ctx.get("min_length")),
    "too_long": lambda ctx: _length_message("at most", ctx.get("max_length")),
    "string_too_long": lambda ctx: _length_message("at most", ctx.get("max_length")),
    "greater_than_equal": lambda ctx: f"must be at least {ctx.get('ge')}",
    "less_than_equal": lambda ctx: f"must be at most {ctx.get('le')}",
}


def _length_message(bound: str, length: object) -> str:
    if bound == "at least" and length == 1:
        return "must not be empty"
    unit = "character" if length == 1 else "characters"
    return f"must be {bound} {length} {unit}"


def validation_reasons(exc: ValidationError, prefix: str = "") -> list[str]:
    """Turn a pydantic ``ValidationError`` into ``"<prefix>.<field path>: <rule>"`` reasons.

    Our own rules raise ``PydanticCustomError`` whose message is written not to contain personal values; a
    ``field`` entry in their context (``"child.date_of_birth"``) extends the location of model-level checks.
    Pydantic's own messages are used only for error types known not to echo the input.
    """
    reasons: list[str] = []
    for err in exc.errors(include_url=False, include_input=False):
        ctx: Mapping[str, Any] = err.get("ctx") or {}
        loc = [str(part) for part in err["loc"]]
        field = ctx.get("field")
        if isinstance(field, str) and field:
            loc.extend(field.split("."))
        path = ".".join(part for part in (prefix, *loc) if part) or prefix or "event"
        kind = err["type"]
        if kind in _MESSAGES:
            message = _MESSAGES[kind](ctx)
        elif kind.startswith("custom_"):
            message = err["msg"]
        elif kind == "literal_error":
            message = f"must be {ctx.get('expected')}"
        elif kind in ("value_error", "assertion_error"):
            message = "is not valid"
        else:
            # Pydantic's parsing messages ("Input should be a valid date, month value is outside expected
            # range") describe the rule, not the value.
            message = err["msg"][:1].lower() + err["msg"][1:]
        reasons.append(_reason(path, message))
    return reasons


def _fail(rule: str, message: str, field: str | None = None, **values: object) -> PydanticCustomError:
    ctx: dict[str, object] = dict(values)
    if field:
        ctx["field"] = field
    return PydanticCustomError(f"custom_{rule}", message, ctx)


# ------------------------------------------------------------------------------------ reusable types


_CONTROL_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co"})


def _clean_text(value: Any) -> Any:
    """NFC, reject control/format characters, strip and collapse runs of whitespace."""
    if not isinstance(value, str):
        return value  # the ``str`` validator reports the wrong type
    value = unicodedata.normalize("NFC", value)
    if any(unicodedata.category(ch) in _CONTROL_CATEGORIES and not ch.isspace() for ch in value):
        raise _fail("control_characters", "must not contain control characters")
    return " ".join(value.split())


Name = Annotated[
    str,
    BeforeValidator(_clean_text),
    StringConstraints(min_length=1, max_length=100),
    Field(description="A person's name: Unicode NFC, whitespace collapsed, no control characters."),
]
"""A person's full name as written on the civil record (all name parts in order, e.g. ``Nguyễn Văn An``)."""

PlaceText = Annotated[
    str,
    BeforeValidator(_clean_text),
    StringConstraints(min_length=1, max_length=200),
]


def _reject_numbers(value: Any) -> Any:
    """Dates and times travel as ISO 8601 / RFC 3339 strings, not as Unix timestamps."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise _fail("temporal_format", "must be an ISO 8601 string, not a number")
    return value


_Temporal = BeforeValidator(_reject_numbers)
StrictInt = Annotated[int, Strict()]


# --------------------------------------------------------------------------------------- payload


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Child(_Frozen):
    full_name: Name
    sex: Literal["male", "female"]
    date_of_birth: Annotated[date, _Temporal]
    time_of_birth: Annotated[time | None, _Temporal] = Field(
        default=None, description="Local time of birth (Vietnam), if recorded."
    )
    place_of_birth: PlaceText = Field(description="Health facility or address where the child was born.")
    multiple_birth_order: Annotated[StrictInt, Field(ge=1, le=10)] = Field(
        default=1, description="Order of this child in a multiple birth (1 for a single birth)."
    )
    multiple_birth_size: Annotated[StrictInt, Field(ge=1, le=10)] = Field(
        default=1, description="Number of children born in this birth (1 for a single birth)."
    )

    @field_validator("date_of_birth")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        today = _now_utc().astimezone(VIETNAM_TZ).date()
        if value > today:
            raise _fail(
                "date_in_future",
                "date of birth {dob} is in the future (today is {today} in Asia/Ho_Chi_Minh)",
                dob=value.isoformat(),
                today=today.isoformat(),
            )
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


class Parent(_Frozen):
    id_number: str = Field(
        description="12-digit personal identification number (Decree 137/2015 Art. 13).",
        json_schema_extra={"pattern": "^[0-9]{12}$"},
    )
    full_name: Name

    @field_validator("id_number")
    @classmethod
    def _well_formed_id(cls, value: str) -> str:
        problem = rules.personal_id_problem(value)
        if problem is not None:
            # The reason must never carry the number itself (it may end up in a dead-letter header).
            echoed = value.strip()
            if len(echoed) >= 4 and echoed in problem:
                problem = problem.replace(echoed, "<redacted>")
            raise _fail("personal_id", "{problem}", problem=problem)
        return value


_PHONE = re.compile(r"\+?[0-9]{8,15}")
_PHONE_SCHEMA_PATTERN = f"^{_PHONE.pattern}$"
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


class Informant(_Frozen):
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


class BirthRegistered(_Frozen):
    """Data of a ``vn.gov.civil.birth.registered`` event: one registered birth, as the office recorded it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registration_number: str = Field(
        pattern=r"^[A-Z0-9]{6,20}$",
        description="Number of the civil record: upper-case letters and digits, e.g. 2020B6E6YJB.",
    )
    registered_at: Annotated[AwareDatetime, _Temporal] = Field(
        description="When the birth was registered (RFC 3339 with offset)."
    )
    office_code: str = Field(
        pattern=r"^[A-Za-z0-9-]{1,32}$", description="Code of the registering civil-status office."
    )
    province_code: str = Field(description="Code of the province where the birth was registered (e.g. 079).")
    child: Child
    mother: Parent
    father: Parent | None = None
    informant: Informant

    @field_validator("registered_at")
    @classmethod
    def _not_ahead(cls, value: datetime) -> datetime:
        if value - _now_utc() > REGISTRATION_CLOCK_SKEW:
            raise _fail(
                "registered_in_future",
                "registration time {at} is more than 5 minutes in the future",
                at=value.isoformat(),
            )
        return value

    @field_validator("province_code")
    @classmethod
    def _known_province(cls, value: str) -> str:
        if not rules.is_known_province(value):
            raise _fail("province", "unknown province code {code}", code=_echo(value))
        return value

    @model_validator(mode="after")
    def _born_before_registration(self) -> BirthRegistered:
        registered_on = self.registered_at.astimezone(VIETNAM_TZ).date()
        if self.child.date_of_birth > registered_on:
            raise _fail(
                "born_after_registration",
                "date of birth {dob} is after the registration date {registered} (Asia/Ho_Chi_Minh)",
                field="child.date_of_birth",
                dob=self.child.date_of_birth.isoformat(),
                registered=registered_on.isoformat(),
            )
        return self


# -------------------------------------------------------------------------------------- envelope

_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")
_URI_REFERENCE = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_INT32 = (-(2**31), 2**31 - 1)


def _printable(value: str) -> bool:
    return not any(unicodedata.category(ch).startswith("C") for ch in value)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured JSON mode (``data`` is a JSON object).

    Extension attributes are allowed; per the specification their names are lower-case ASCII letters and
    digits, and their values strings, booleans or 32-bit integers.
    """

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        json_schema_extra={
            "propertyNames": {"pattern": "^[a-z0-9]+$"},
            "additionalProperties": {"type": ["string", "integer", "boolean"]},
        },
    )

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=200, description="Unique per source; used as Nats-Msg-Id.")
    source: str = Field(
        min_length=1,
        description="URI-reference identifying the producer.",
        json_schema_extra={"format": "uri-reference"},
    )
    type: str = Field(min_length=1, description="Event type, e.g. vn.gov.civil.birth.registered.")
    subject: str | None = Field(default=None, min_length=1, description="Birth: the registration number.")
    time: Annotated[AwareDatetime | None, _Temporal] = Field(
        default=None, description="When the occurrence happened (RFC 3339)."
    )
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = Field(
        default=None,
        min_length=1,
        description="URI of the schema of data.",
        json_schema_extra={"format": "uri"},
    )
    data: dict[str, Any]

    @field_validator("id", "type", "subject")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        if value is not None and not _printable(value):
            raise _fail("control_characters", "must not contain control characters")
        return value

    @field_validator("source")
    @classmethod
    def _uri_reference(cls, value: str) -> str:
        if not _URI_REFERENCE.fullmatch(value):
            raise _fail("uri_reference", "must be a URI-reference (RFC 3986)")
        return value

    @field_validator("dataschema")
    @classmethod
    def _absolute_uri(cls, value: str | None) -> str | None:
        if value is not None and not (_URI_REFERENCE.fullmatch(value) and _URI_SCHEME.match(value)):
            raise _fail("uri", "must be an absolute URI (RFC 3986)")
        return value

    @model_validator(mode="after")
    def _extension_attributes(self) -> CloudEvent:
        for name, message in _extension_problems(self.model_extra or {}):
            raise _fail("extension_attribute", message, field=name)
        return self


_DECLARED_ATTRIBUTES: Final = frozenset(CloudEvent.model_fields)


def _extension_problems(attributes: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, rule)`` for each extension attribute that breaks the CloudEvents naming or type rules."""
    problems: list[tuple[str, str]] = []
    for name, value in attributes.items():
        if name in _DECLARED_ATTRIBUTES:
            continue
        if not _ATTRIBUTE_NAME.fullmatch(name):
            problems.append((name, "extension attribute names must be lower-case ASCII letters and digits"))
        elif not (
            value is None
            or isinstance(value, (str, bool))
            or (isinstance(value, int) and _INT32[0] <= value <= _INT32[1])
        ):
            problems.append((name, "extension attribute values must be strings, booleans or 32-bit integers"))
    return problems


# ------------------------------------------------------------------------------ parse / make / encode


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {_echo(key)}")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"not valid UTF-8 ({exc.reason} at byte {exc.start})"
        raise InvalidEvent(_reason("envelope", problem)) from None
    try:
        obj = json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(
            _reason("envelope", f"not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno})")
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidEvent(_reason("envelope", f"not valid JSON ({exc})")) from None
    if not isinstance(obj, dict):
        raise InvalidEvent(_reason("envelope", "must be a JSON object"))
    return obj


def parse_birth_event(raw: bytes) -> tuple[CloudEvent, BirthRegistered]:
    """Decode, validate and type a birth-registered CloudEvent; :class:`InvalidEvent` lists all problems."""
    obj = _decode(raw)
    reasons: list[str] = []
    event: CloudEvent | None = None
    try:
        event = CloudEvent.model_validate(obj)
    except ValidationError as exc:
        for reason in validation_reasons(exc, "envelope"):
            # ``data`` is the payload, reported by its own path.
            reasons.append(reason.removeprefix("envelope.") if reason.startswith("envelope.data") else reason)
        # Model-level checks do not run when a field failed: report the extension attributes here too.
        for name, message in _extension_problems(obj):
            reason = _reason(f"envelope.{name}", message)
            if reason not in reasons:
                reasons.append(reason)

    event_type = obj.get("type")
    if isinstance(event_type, str) and event_type and event_type != BIRTH_REGISTERED:
        reasons.append(_reason("envelope.type", f"expected {BIRTH_REGISTERED!r}, got {_echo(event_type)}"))
        raise InvalidEvent(reasons)  # another kind of event: its data is not ours to judge

    payload: BirthRegistered | None = None
    data = obj.get("data")
    if isinstance(data, dict):
        try:
            payload = BirthRegistered.model_validate(data)
        except ValidationError as exc:
            reasons.extend(validation_reasons(exc, "data"))

    if reasons or event is None or payload is None:
        raise InvalidEvent(reasons or [_reason("envelope", "not a valid event")])
    return event, payload


def make_birth_event(
    payload: BirthRegistered,
    *,
    event_id: str | None = None,
    source: str = DEFAULT_SOURCE,
    time: datetime | None = None,
) -> CloudEvent:
    """Wrap a payload in a CloudEvent (``time`` defaults to now, ``subject`` is the registration number)."""
    return CloudEvent(
        specversion="1.0",
        id=event_id if event_id is not None else str(uuid.uuid4()),
        source=source,
        type=BIRTH_REGISTERED,
        subject=payload.registration_number,
        time=time if time is not None else _now_utc(),
        datacontenttype="application/json",
        dataschema=BIRTH_DATASCHEMA,
        data=payload.model_dump(mode="json"),
    )


def encode_event(ev: CloudEvent) -> bytes:
    """Structured-mode JSON: compact, UTF-8, non-ASCII kept; unset optional attributes are left out."""
    doc = ev.model_dump(mode="json")
    doc = {key: value for key, value in doc.items() if value is not None or key == "data"}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
