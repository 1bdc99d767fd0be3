"""The birth-registered CloudEvent: envelope, typed payload, validation reasons, encode/parse round trip."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from events.birth_registered import BIRTH_REGISTERED, BirthRegistered, make_birth_event, parse_birth_event
from events.envelope import CloudEvent, InvalidEvent, civil_subject, encode_event

VN = ZoneInfo("Asia/Ho_Chi_Minh")

MOTHER_ID = "079190123456"  # HCMC, female born in the 1900s, 1990
FATHER_ID = "001088654321"  # Hà Nội, male born in the 1900s, 1988
CHILD_NAME = "Nguyễn Văn An"
MOTHER_NAME = "Trần Thị Bình"
FATHER_NAME = "Nguyễn Văn Cường"


def sample_data() -> dict[str, Any]:
    return {
        "registration_number": "2024B6E6YJB",
        "registered_at": "2024-05-02T09:30:00+07:00",
        "office_code": "HCM-Q1-TP",
        "province_code": "079",
        "child": {
            "full_name": CHILD_NAME,
            "sex": "male",
            "date_of_birth": "2024-04-30",
            "time_of_birth": "06:15:00",
            "place_of_birth": "Bệnh viện Từ Dũ, Quận 1, TP. Hồ Chí Minh",
        },
        "mother": {"id_number": MOTHER_ID, "full_name": MOTHER_NAME},
        "father": {"id_number": FATHER_ID, "full_name": FATHER_NAME},
        "informant": {"phone": "+84912345678", "email": "binh.tran@example.vn", "preferred_language": "vi"},
    }


def sample_envelope(data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "4f6c1a52-2b0e-4d8e-9a3b-6a1f0e6b9c11",
        "source": "urn:vn:civil-status:office:HCM-Q1-TP",
        "type": BIRTH_REGISTERED,
        "subject": "2024B6E6YJB",
        "time": "2024-05-02T09:30:05+07:00",
        "datacontenttype": "application/json",
        "data": sample_data() if data is None else data,
    }


def raw(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, ensure_ascii=False).encode("utf-8")


def reasons_after(change: Callable[[dict[str, Any]], None]) -> list[str]:
    """Reasons given for the sample envelope after ``change`` was applied to it."""
    envelope = sample_envelope()
    change(envelope)
    with pytest.raises(InvalidEvent) as info:
        parse_birth_event(raw(envelope))
    return info.value.reasons


def vn_today() -> str:
    return datetime.now(VN).date().isoformat()


# ------------------------------------------------------------------------------------------ valid


def test_valid_sample_parses() -> None:
    event, birth = parse_birth_event(raw(sample_envelope()))

    assert event.type == BIRTH_REGISTERED
    assert event.subject == "2024B6E6YJB"
    assert event.time == datetime(2024, 5, 2, 2, 30, 5, tzinfo=UTC)
    assert birth.registration_number == "2024B6E6YJB"
    assert birth.province_code == "079"
    assert birth.registered_at == datetime(2024, 5, 2, 9, 30, tzinfo=VN)
    assert birth.child.full_name == CHILD_NAME
    assert birth.child.date_of_birth.isoformat() == "2024-04-30"
    assert (birth.child.multiple_birth_order, birth.child.multiple_birth_size) == (1, 1)
    assert birth.mother.id_number == MOTHER_ID
    assert birth.father is not None and birth.father.id_number == FATHER_ID
    assert birth.informant.preferred_language == "vi"


def test_optional_parts_may_be_absent() -> None:
    data = sample_data()
    del data["father"]
    del data["child"]["time_of_birth"]
    data["informant"] = {"email": "binh.tran@example.vn"}

    _, birth = parse_birth_event(raw(sample_envelope(data)))

    assert birth.father is None
    assert birth.child.time_of_birth is None
    assert birth.informant.phone is None


def test_names_are_nfc_and_whitespace_collapsed() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn")
    assert decomposed != "Nguyễn"  # the test input really is decomposed
    data = sample_data()
    data["child"]["full_name"] = f"  {decomposed} \t Văn   An\n"
    data["mother"]["full_name"] = unicodedata.normalize("NFD", MOTHER_NAME)
    data["child"]["place_of_birth"] = " Bệnh viện   Từ Dũ "

    _, birth = parse_birth_event(raw(sample_envelope(data)))

    assert birth.child.full_name == "Nguyễn Văn An"
    assert unicodedata.is_normalized("NFC", birth.child.full_name)
    assert birth.mother.full_name == MOTHER_NAME
    assert birth.child.place_of_birth == "Bệnh viện Từ Dũ"


def test_birth_on_registration_day_counts_in_vietnam_time() -> None:
    data = sample_data()
    data["child"]["date_of_birth"] = "2024-05-02"
    data["registered_at"] = "2024-05-01T20:00:00Z"  # 03:00 on 2 May in Vietnam

    _, birth = parse_birth_event(raw(sample_envelope(data)))

    assert birth.child.date_of_birth.isoformat() == "2024-05-02"


def test_twins_second_of_two() -> None:
    data = sample_data()
    data["child"]["multiple_birth_order"] = 2
    data["child"]["multiple_birth_size"] = 2

    _, birth = parse_birth_event(raw(sample_envelope(data)))

    assert birth.child.multiple_birth_order == 2


def test_lower_case_extension_attribute_is_kept() -> None:
    envelope = sample_envelope()
    envelope["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    event, _ = parse_birth_event(raw(envelope))

    assert event.model_extra == {"traceparent": envelope["traceparent"]}


# ---------------------------------------------------------------------------------------- invalid


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets ``envelope[path]`` (dotted path; ``...`` as value deletes the key)."""

    def change(envelope: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = envelope
        for key in parents:
            node = node[key]
        if value is ...:
            del node[last]
        else:
            node[last] = value

    return change


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(envelope: dict[str, Any]) -> None:
        for one in changes:
            one(envelope)

    return change


def _future_date() -> str:
    return (datetime.now(VN).date() + timedelta(days=400)).isoformat()


REJECTIONS: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    (
        "dob-in-future",
        lambda e: _set("data.child.date_of_birth", _future_date())(e),  # evaluated when the test runs
        "data.child.date_of_birth",
        "is in the future",
    ),
    (
        "dob-after-registration",
        _set("data.child.date_of_birth", "2024-05-03"),
        "data.child.date_of_birth",
        "date of birth is after the registration date (data.registered_at",
    ),
    (
        "dob-after-registration-day-in-vietnam",
        _both(
            _set("data.child.date_of_birth", "2024-05-02"),
            _set("data.registered_at", "2024-05-01T16:00:00Z"),  # 23:00 on 1 May in Vietnam
        ),
        "data.child.date_of_birth",
        "after the registration date",
    ),
    ("unknown-province", _set("data.province_code", "999"), "data.province_code", "unknown province code"),
    ("mother-id-too-short", _set("data.mother.id_number", "07919012345"), "data.mother.id_number", ""),
    ("mother-id-letters", _set("data.mother.id_number", "07919012345A"), "data.mother.id_number", ""),
    ("father-id-malformed", _set("data.father.id_number", "001-088-654"), "data.father.id_number", ""),
    ("name-too-long", _set("data.child.full_name", "Nguyễn " * 20), "data.child.full_name", "at most 100"),
    ("empty-name", _set("data.mother.full_name", " \t "), "data.mother.full_name", "must not be empty"),
    (
        "control-characters",
        _set("data.father.full_name", "Nguyễn\x07Văn Cường"),
        "data.father.full_name",
        "control characters",
    ),
    ("no-contact", _set("data.informant", {}), "data.informant", "at least one of phone or email"),
    (
        "blank-contact",
        _set("data.informant", {"phone": " ", "email": ""}),
        "data.informant",
        "at least one of phone or email",
    ),
    ("bad-email", _set("data.informant.email", "binh.tran@"), "data.informant.email", "e-mail"),
    ("bad-phone", _set("data.informant.phone", "0912 345"), "data.informant.phone", "8 to 15 digits"),
    (
        "order-exceeds-size",
        _both(_set("data.child.multiple_birth_order", 3), _set("data.child.multiple_birth_size", 2)),
        "data.child.multiple_birth_order",
        "exceeds multiple_birth_size 2",
    ),
    ("size-over-10", _set("data.child.multiple_birth_size", 11), "data.child.multiple_birth_size", "at most 10"),
    ("naive-registered-at", _set("data.registered_at", "2024-05-02T09:30:00"), "data.registered_at", "timezone"),
    (
        "registered-in-future",
        _set("data.registered_at", (datetime.now(UTC) + timedelta(hours=1)).isoformat()),
        "data.registered_at",
        "more than 5 minutes in the future",
    ),
    ("timestamp-number", _set("data.registered_at", 1714617000), "data.registered_at", "ISO 8601"),
    ("bad-registration-number", _set("data.registration_number", "2024b6"), "data.registration_number", ""),
    ("bad-sex", _set("data.child.sex", "unknown"), "data.child.sex", "'male' or 'female'"),
    ("unknown-field", _set("data.child.weight_kg", 3.2), "data.child.weight_kg", "not a known field"),
    ("missing-mother", _set("data.mother", ...), "data.mother", "is required"),
    (
        "wrong-type",
        _set("type", "vn.gov.civil.death.registered"),
        "envelope.type",
        "expected 'vn.gov.civil.birth.registered', got 'vn.gov.civil.death.registered'",
    ),
    ("wrong-specversion", _set("specversion", "0.3"), "envelope.specversion", "'1.0'"),
    ("naive-time", _set("time", "2024-05-02T09:30:05"), "envelope.time", "timezone"),
    ("bad-source", _set("source", "not a uri"), "envelope.source", "URI-reference"),
    ("data-not-object", _set("data", "hello"), "data", "must be an object"),
    ("upper-case-extension", _set("TraceParent", "x"), "envelope.TraceParent", "lower-case"),
]


@pytest.mark.parametrize(("change", "path", "fragment"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_rule_rejects_with_reason_naming_the_field(
    change: Callable[[dict[str, Any]], None], path: str, fragment: str
) -> None:
    reasons = reasons_after(change)

    matching = [r for r in reasons if r.startswith(f"{path}: ")]
    assert matching, f"no reason for {path} in {reasons}"
    assert any(fragment in r for r in matching), reasons


def test_dob_in_future_reason_does_not_quote_the_date() -> None:
    future = _future_date()
    reasons = reasons_after(_set("data.child.date_of_birth", future))

    assert reasons == ["data.child.date_of_birth: date of birth is in the future (today in Asia/Ho_Chi_Minh)"]


def test_malformed_mother_id_reason() -> None:
    reasons = reasons_after(_set("data.mother.id_number", "0791901234"))

    assert reasons == ["data.mother.id_number: must be 12 digits"]


def test_not_json() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_birth_event(b"")

    assert info.value.reasons == ["envelope: not valid JSON (Expecting value: line 1 column 1)"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"\xff\xfe{}", "envelope: not valid UTF-8"),
        (b"[1, 2]", "envelope: must be a JSON object"),
        (b'{"id": "a", "id": "b"}', "envelope: not valid JSON (duplicate key 'id')"),
        (b'{"specversion": NaN}', "envelope: not valid JSON (NaN is not valid JSON)"),
    ],
)
def test_undecodable_envelope(payload: bytes, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_birth_event(payload)

    assert len(info.value.reasons) == 1 and info.value.reasons[0].startswith(fragment)


def test_every_problem_is_reported_and_joined() -> None:
    envelope = sample_envelope()
    envelope["time"] = "yesterday"
    data = envelope["data"]
    data["province_code"] = "999"
    data["child"]["date_of_birth"] = _future_date()
    data["mother"]["id_number"] = "12345"
    data["informant"] = {}

    with pytest.raises(InvalidEvent) as info:
        parse_birth_event(raw(envelope))

    paths = [reason.split(": ", 1)[0] for reason in info.value.reasons]
    assert paths == [
        "envelope.time",
        "data.province_code",
        "data.child.date_of_birth",
        "data.mother.id_number",
        "data.informant",
    ]
    assert str(info.value) == "; ".join(info.value.reasons)


def test_reasons_do_not_contain_personal_data() -> None:
    bad_mother_id = "07919012345"
    bad_father_id = "00108865432X"
    long_name = "Lê Hoàng Phương " * 7
    control_name = "Phạm\x07Minh Khôi"
    bad_email = "pham.minhkhoi@@example"
    bad_phone = "+84-912-345-678"
    envelope = sample_envelope()
    data = envelope["data"]
    data["child"]["full_name"] = long_name
    data["mother"] = {"id_number": bad_mother_id, "full_name": control_name}
    data["father"] = {"id_number": bad_father_id, "full_name": "Đỗ\x00Văn Tài"}
    data["informant"] = {"phone": bad_phone, "email": bad_email}

    with pytest.raises(InvalidEvent) as info:
        parse_birth_event(raw(envelope))

    text = str(info.value)
    assert len(info.value.reasons) == 7, info.value.reasons
    for secret in (
        bad_mother_id,
        bad_father_id,
        "Lê Hoàng",
        "Phương",
        "Phạm",
        "Khôi",
        "Đỗ",
        "Tài",
        "pham.minhkhoi",
        "912-345",
        "912345",
    ):
        assert secret not in text, f"{secret!r} leaked into {text!r}"
    assert text.isascii() and text.isprintable()


def test_reasons_are_header_safe() -> None:
    envelope = sample_envelope()
    envelope["type"] = "evil\r\nInjected-Header: 1"

    with pytest.raises(InvalidEvent) as info:
        parse_birth_event(raw(envelope))

    assert all(reason.isascii() and reason.isprintable() for reason in info.value.reasons)


def test_payload_is_frozen_and_rejects_naive_datetime_directly() -> None:
    _, birth = parse_birth_event(raw(sample_envelope()))
    with pytest.raises(ValidationError):
        birth.office_code = "X"  # type: ignore[misc]

    data = sample_data()
    data["registered_at"] = datetime(2024, 5, 2, 9, 30)
    with pytest.raises(ValidationError, match="timezone"):
        BirthRegistered.model_validate(data)


# ------------------------------------------------------------------------------------ round trip


def test_round_trip_make_encode_parse() -> None:
    _, birth = parse_birth_event(raw(sample_envelope()))
    when = datetime(2024, 5, 2, 9, 30, 5, tzinfo=VN)

    event = make_birth_event(birth, event_id="evt-1", source="urn:vn:civil-status:office:HCM-Q1-TP", time=when)
    encoded = encode_event(event)
    event_again, birth_again = parse_birth_event(encoded)

    assert birth_again == birth
    assert event_again == event
    assert event.subject == birth.registration_number
    assert event.type == BIRTH_REGISTERED
    assert "Nguyễn Văn An".encode() in encoded  # non-ASCII kept, not \u-escaped
    assert encoded == json.dumps(json.loads(encoded), ensure_ascii=False, separators=(",", ":")).encode()


def test_make_birth_event_defaults() -> None:
    _, birth = parse_birth_event(raw(sample_envelope()))

    first = make_birth_event(birth)
    second = make_birth_event(birth)

    assert first.id != second.id and len(first.id) == 36
    assert first.source == f"urn:vn:civil-status:{birth.province_code}"  # the office of its province
    assert first.datacontenttype == "application/json"
    assert first.data == birth.model_dump(mode="json")
    assert isinstance(first, CloudEvent)
    assert b'"subject":"2024B6E6YJB"' in encode_event(first)


def test_encode_leaves_out_unset_attributes_but_keeps_null_data_fields() -> None:
    data = sample_data()
    del data["father"]
    _, birth = parse_birth_event(raw(sample_envelope(data)))
    event = CloudEvent(
        specversion="1.0", id="e", source="urn:x", type=BIRTH_REGISTERED, data=birth.model_dump(mode="json")
    )

    doc = json.loads(encode_event(event))

    assert "subject" not in doc and "time" not in doc and "dataschema" not in doc
    assert doc["data"]["father"] is None


def test_civil_subject() -> None:
    assert civil_subject("079") == "civil.079.birth_registered"
    assert civil_subject("001", "death_registered") == "civil.001.death_registered"
    with pytest.raises(ValueError):
        civil_subject("07.9")


def test_invalid_event_survives_pickling() -> None:
    import pickle

    exc = InvalidEvent(["a: x", "b: y"])
    again = pickle.loads(pickle.dumps(exc))

    assert again.reasons == ["a: x", "b: y"] and str(again) == "a: x; b: y"


# ------------------------------------------------------------------------------ dates of birth any rule can serve


def _dob_reasons(dob: str, registered_at: str = "2024-05-02T09:30:00+07:00") -> list[str]:
    reasons = reasons_after(_both(_set("data.child.date_of_birth", dob), _set("data.registered_at", registered_at)))
    assert all(dob not in r and registered_at[:10] not in r for r in reasons), reasons  # no date is quoted
    return reasons


def test_birth_before_the_id_number_rules_is_rejected_naming_the_rule() -> None:
    assert _dob_reasons("1850-06-01") == [
        "data.child.date_of_birth: is before 1900, the earliest birth year the personal ID number rules cover "
        "(rules/data/personal_id.yaml)"
    ]


def test_birth_in_the_future_is_rejected_without_the_date() -> None:
    reasons = _dob_reasons(_future_date())
    assert reasons == ["data.child.date_of_birth: date of birth is in the future (today in Asia/Ho_Chi_Minh)"]


def test_birth_more_than_120_years_before_registration_is_rejected() -> None:
    assert _dob_reasons("1903-05-01") == [
        "data.child.date_of_birth: date of birth is more than 120 years before the registration date "
        "(plausibility limit in rules/data/civil_registration.yaml)"
    ]


def test_birth_exactly_120_years_before_registration_is_accepted() -> None:
    data = sample_data()
    data["child"]["date_of_birth"] = "1904-05-02"
    _, birth = parse_birth_event(raw(sample_envelope(data)))
    assert birth.child.date_of_birth.isoformat() == "1904-05-02"


def test_birth_after_registration_is_rejected_without_either_date() -> None:
    assert _dob_reasons("2024-05-03") == [
        "data.child.date_of_birth: date of birth is after the registration date (data.registered_at, in "
        "Asia/Ho_Chi_Minh)"
    ]


@pytest.mark.parametrize("dob", ["1999-12-31", "2020-02-29"])
def test_late_registration_of_1999_and_2020_births_is_accepted(dob: str) -> None:
    data = sample_data()
    data["child"]["date_of_birth"] = dob
    _, birth = parse_birth_event(raw(sample_envelope(data)))
    assert birth.child.date_of_birth.isoformat() == dob


@pytest.mark.parametrize("registered_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_registration_time_out_of_range_is_a_reason_not_an_overflow(registered_at: str) -> None:
    reasons = reasons_after(_set("data.registered_at", registered_at))
    assert reasons == ["data.registered_at: is outside the supported date range"]


def test_envelope_time_out_of_range_is_a_reason() -> None:
    assert reasons_after(_set("time", "0001-01-01T00:00:00+14:00")) == [
        "envelope.time: is outside the supported date range"
    ]


def test_clock_seam_is_events_envelope_now_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    from events import envelope

    monkeypatch.setattr(envelope, "_now_utc", lambda: datetime(2024, 4, 29, 12, 0, tzinfo=UTC))
    reasons = reasons_after(lambda e: None)  # the sample's birth (30 April) and registration are "tomorrow"
    assert reasons == ["data.registered_at: registration time is more than 5 minutes in the future",
                       "data.child.date_of_birth: date of birth is in the future (today in Asia/Ho_Chi_Minh)"]


def test_models_module_still_re_exports_the_birth_event() -> None:
    from events import models

    assert models.parse_birth_event is parse_birth_event and models.InvalidEvent is InvalidEvent
