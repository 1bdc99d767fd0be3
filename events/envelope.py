"""The CloudEvents 1.0 envelope shared by every event type, and reusable field types.

Problems are reported as :class:`InvalidEvent` (defined in :mod:`events.reasons`, re-exported here), whose
reasons never carry a personal value.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
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

import rules
from events.media_types import JSON_MEDIA_TYPE, JSON_MEDIA_TYPE_PATTERN, media_type_problem
from events.reasons import InvalidEvent, _echo, _fail, _reason, validation_reasons

__all__ = [
    "CLOUDEVENT_SCHEMA_ID", "VIETNAM_TZ", "CloudEvent", "InvalidEvent", "Name", "PastDate", "PersonalIdNumber",
    "PlaceText",
    "ProvinceCode", "civil_subject", "decode_event", "encode_event", "envelope_reasons", "health_subject",
    "json_value", "make_event", "parse_document", "validation_reasons",
]

CLOUDEVENT_SCHEMA_ID: Final = "urn:lifeevents:schema:cloudevents:1.0"
"""``$id`` of ``events/schemas/cloudevent.schema.json``."""


def _vietnam_tz() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Ho_Chi_Minh")
    except Exception:  # no tz database on this host: Vietnam has used UTC+7 without DST since 1975
        return timezone(timedelta(hours=7), "ICT")


VIETNAM_TZ: Final[tzinfo] = _vietnam_tz()


def _now_utc() -> datetime:
    """The current time (the one seam for tests: patch ``events.envelope._now_utc``)."""
    return datetime.now(UTC)


def now_utc() -> datetime:
    return _now_utc()


def vietnam_today() -> date:
    return _now_utc().astimezone(VIETNAM_TZ).date()


def _subject(domain: str, province_code: str, event: str) -> str:
    for token, what in ((province_code, "province code"), (event, "event")):
        if not token or any(c in token for c in ".*> \t\r\n"):
            raise ValueError(f"{what} {token!r} is not a valid NATS subject token")
    return f"{domain}.{province_code}.{event}"


def civil_subject(province_code: str, event: str = "birth_registered") -> str:
    """NATS subject of a civil-status event: ``civil.<province>.<event>``."""
    return _subject("civil", province_code, event)


def health_subject(province_code: str, event: str) -> str:
    """NATS subject of a health event: ``health.<province>.<event>``."""
    return _subject("health", province_code, event)


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


Temporal: Final = BeforeValidator(_reject_numbers)
StrictInt = Annotated[int, Strict()]


def _well_formed_id(value: str) -> str:
    problem = rules.personal_id_problem(value)
    if problem is not None:
        # The reason must never carry the number itself (it may end up in a dead-letter header).
        echoed = value.strip()
        if len(echoed) >= 4 and echoed in problem:
            problem = problem.replace(echoed, "<redacted>")
        raise _fail("personal_id", "{problem}", problem=problem)
    return value


PersonalIdNumber = Annotated[str, AfterValidator(_well_formed_id)]
"""A 12-digit personal identification number (shape, province and century digit checked, never echoed)."""


def _not_in_future(value: date) -> date:
    if value > vietnam_today():
        raise _fail("date_in_future", "is in the future (today in Asia/Ho_Chi_Minh)")
    return value


PastDate = Annotated[date, BeforeValidator(_reject_numbers), AfterValidator(_not_in_future)]
"""A day that has happened (an ISO 8601 date, today in Vietnam at the latest): a dose, a move, a death."""


def _known_province(value: str) -> str:
    if not rules.is_known_province(value):
        raise _fail("province", "unknown province code {code}", code=_echo(value))
    return value


ProvinceCode = Annotated[str, AfterValidator(_known_province)]

AGENCY_CODE_PATTERN: Final = r"^[A-Za-z0-9-]{1,32}$"
"""Code of an office or a health station."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    id: str = Field(min_length=1, max_length=200, description="Unique per source (source + id is the event's key); "
                    "Nats-Msg-Id is a hash of source and id.")
    source: str = Field(
        min_length=1,
        max_length=200,
        description="URI-reference identifying the producer.",
        json_schema_extra={"format": "uri-reference"},
    )
    type: str = Field(min_length=1, description="Event type, e.g. vn.gov.civil.birth.registered.")
    subject: str | None = Field(default=None, min_length=1, description="Birth: the registration number.")
    time: Annotated[AwareDatetime | None, Temporal] = Field(
        default=None, description="When the occurrence happened (RFC 3339)."
    )
    datacontenttype: str = Field(
        default="application/json",
        description="Media type of data: application/json, parameters allowed (a charset must be utf-8).",
        json_schema_extra={"pattern": JSON_MEDIA_TYPE_PATTERN},
    )
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

    @field_validator("datacontenttype")
    @classmethod
    def _json_media_type(cls, value: str) -> str:
        problem = media_type_problem(value, JSON_MEDIA_TYPE)
        if problem:
            raise _fail("media_type", "{problem}", problem=problem)
        return value

    @field_validator("time")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        return value if value is None else in_utc_range(value)

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


def in_utc_range(value: datetime) -> datetime:
    """``value`` if it converts to UTC and Vietnam time; a reason (not ``OverflowError``) for e.g. year 1 +14:00."""
    try:
        value.astimezone(UTC)
        value.astimezone(VIETNAM_TZ)
    except (OverflowError, ValueError):
        raise _fail("datetime_range", "is outside the supported date range") from None
    return value


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


# ------------------------------------------------------------------------------ decode / parse / encode


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {_echo(key)}")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_value(raw: bytes, path: str) -> Any:
    """UTF-8 JSON bytes → the value; :class:`InvalidEvent` naming ``path`` if they are not that."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"not valid UTF-8 ({exc.reason} at byte {exc.start})"
        raise InvalidEvent(_reason(path, problem)) from None
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(
            _reason(path, f"not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno})")
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidEvent(_reason(path, f"not valid JSON ({exc})")) from None


def _decode(raw: bytes) -> dict[str, Any]:
    obj = json_value(raw, "envelope")
    if not isinstance(obj, dict):
        raise InvalidEvent(_reason("envelope", "must be a JSON object"))
    return obj


decode_event = _decode
"""Raw message bytes → the JSON object of the event; :class:`InvalidEvent` if it is not one."""


def envelope_reasons(document: Mapping[str, Any]) -> tuple[CloudEvent | None, list[str]]:
    """Validate the envelope of a decoded event: the model (or None) and every reason found."""
    try:
        return CloudEvent.model_validate(document), []
    except ValidationError as exc:
        reasons = []
        for reason in validation_reasons(exc, "envelope"):
            # ``data`` is the payload, reported by its own path.
            is_data = reason.startswith(("envelope.data:", "envelope.data.", "envelope.data["))
            reasons.append(reason.removeprefix("envelope.") if is_data else reason)
        # Model-level checks do not run when a field failed: report the extension attributes here too.
        for name, message in _extension_problems(document):
            reason = _reason(f"envelope.{name}", message)
            if reason not in reasons:
                reasons.append(reason)
        return None, reasons


P = TypeVar("P", bound=BaseModel)


def parse_document(document: Mapping[str, Any], event_type: str, payload_model: type[P]) -> tuple[CloudEvent, P]:
    """Validate a decoded event of ``event_type`` and type its data; :class:`InvalidEvent` lists all problems."""
    event, reasons = envelope_reasons(document)
    found_type = document.get("type")
    if isinstance(found_type, str) and found_type and found_type != event_type:
        reasons.append(_reason("envelope.type", f"expected {event_type!r}, got {_echo(found_type)}"))
        raise InvalidEvent(reasons)  # another kind of event: its data is not ours to judge

    payload: P | None = None
    data = document.get("data")
    if isinstance(data, dict):
        try:
            payload = payload_model.model_validate(data)
        except ValidationError as exc:
            reasons.extend(validation_reasons(exc, "data"))

    if reasons or event is None or payload is None:
        raise InvalidEvent(reasons or [_reason("envelope", "not a valid event")])
    return event, payload


def make_event(payload: BaseModel, *, event_type: str, dataschema: str, source: str, event_id: str | None = None,
               subject: str | None = None, time: datetime | None = None) -> CloudEvent:
    """Wrap a payload in a CloudEvent (``id`` defaults to a new UUID, ``time`` to now)."""
    return CloudEvent(
        specversion="1.0",
        id=event_id if event_id is not None else str(uuid.uuid4()),
        source=source,
        type=event_type,
        subject=subject,
        time=time if time is not None else _now_utc(),
        datacontenttype="application/json",
        dataschema=dataschema,
        data=payload.model_dump(mode="json"),
    )


def encode_event(ev: CloudEvent) -> bytes:
    """Structured-mode JSON: compact, UTF-8, non-ASCII kept; unset optional attributes are left out."""
    doc = ev.model_dump(mode="json")
    doc = {key: value for key, value in doc.items() if value is not None or key == "data"}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
