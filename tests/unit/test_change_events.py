"""Moves and birth corrections: event models, the reasons they are refused for (never quoting personal data), the
handlers' order (a redelivery is not judged again), subjects, schemas and notice templates."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from activities.notification import LANGUAGES, NoticeRenderer
from events.birth_corrected import (
    BIRTH_CORRECTED,
    BORN_AFTER_REGISTRATION,
    NOTHING_CHANGED,
    UNKNOWN_REGISTRATION,
    BirthCorrected,
    BirthCorrectedHandler,
    CorrectedFields,
    RegisteredChild,
    RegistrationNotRecorded,
    born_too_long_before,
    correction_reasons,
    make_correction_event,
    parse_correction_event,
)
from events.envelope import CloudEvent, InvalidEvent, encode_event
from events.residence_changed import (
    BEFORE_BIRTH,
    BEFORE_CURRENT,
    DECEASED,
    RESIDENCE_CHANGED,
    SAME_HOUSEHOLD,
    UNKNOWN_CITIZEN,
    UNKNOWN_HOUSEHOLD,
    Mover,
    ResidenceChanged,
    ResidenceChangedHandler,
    make_residence_event,
    move_reasons,
    parse_residence_event,
)
from events.schema import ASYNCAPI_PATH, render_all
from events.streams import subject_for
from workflows.change_contracts import ChangeCase

ID = "079324000123"
HOUSEHOLD, OTHER = uuid.uuid4(), uuid.uuid4()


def move(**overrides: Any) -> ResidenceChanged:
    data = {"person_id_number": ID, "household_number": "HK07900000001", "moved_on": date(2025, 3, 1),
            "office_code": "UBND-079", "province_code": "079", **overrides}
    return ResidenceChanged.model_validate(data)


def mover(**overrides: Any) -> Mover:
    return Mover(**{"person_id": uuid.uuid4(), "date_of_birth": date(2024, 5, 1), "deceased": False,
                    "household_id": HOUSEHOLD, "current_household_id": OTHER, "current_since": date(2024, 5, 1),
                    **overrides})


def test_a_move_round_trips_and_names_its_subject() -> None:
    raw = encode_event(make_residence_event(move(), event_id="m-1"))
    event, payload = parse_residence_event(raw)
    assert event.type == RESIDENCE_CHANGED and event.subject is None and payload == move()
    assert subject_for(RESIDENCE_CHANGED, "079") == "civil.079.residence_changed"
    assert subject_for(BIRTH_CORRECTED, "001") == "civil.001.birth_corrected"


def test_a_move_in_the_future_is_refused_without_the_date() -> None:
    tomorrow = date.today() + timedelta(days=2)
    doc = json.loads(encode_event(make_residence_event(move())))
    doc["data"]["moved_on"] = tomorrow.isoformat()
    doc["data"]["person_id_number"] = "12345"
    with pytest.raises(InvalidEvent) as err:
        parse_residence_event(json.dumps(doc).encode())
    text = str(err.value)
    assert "data.moved_on: is in the future" in text and "data.person_id_number" in text
    assert tomorrow.isoformat() not in text and "12345" not in text


@pytest.mark.parametrize(("changes", "moved_on", "reasons"), [
    ({}, date(2025, 3, 1), []),
    ({"household_id": None}, date(2025, 3, 1), [UNKNOWN_HOUSEHOLD]),
    ({"deceased": True}, date(2025, 3, 1), [DECEASED]),
    ({}, date(2024, 4, 30), [BEFORE_BIRTH]),
    ({"current_since": date(2025, 6, 1)}, date(2025, 3, 1), [BEFORE_CURRENT]),
    ({"current_household_id": HOUSEHOLD}, date(2025, 3, 1), [SAME_HOUSEHOLD]),
])
def test_move_reasons(changes: dict[str, Any], moved_on: date, reasons: list[str]) -> None:
    assert move_reasons(mover(**changes), moved_on) == reasons
    for reason in reasons:
        assert ID not in reason and "2024" not in reason and reason.isascii()


class FakeMoves:
    def __init__(self, stored: ChangeCase | None = None, found: Mover | None = None) -> None:
        self.stored, self.found, self.kept = stored, found, 0
        self.started: list[ChangeCase] = []

    async def stored_move(self, event: CloudEvent) -> ChangeCase | None:
        return self.stored

    async def find_mover(self, payload: ResidenceChanged) -> Mover | None:
        return self.found

    async def store_move(self, event: CloudEvent, payload: ResidenceChanged, found: Mover) -> ChangeCase:
        self.kept += 1
        return ChangeCase(change_id=uuid.uuid4(), person_id=found.person_id)

    async def start_move(self, case: ChangeCase, province_code: str) -> None:
        self.started.append(case)

    async def start_correction(self, case: ChangeCase, province_code: str) -> None:
        self.started.append(case)


async def test_move_handler_keeps_then_starts_and_a_redelivery_is_not_judged_again() -> None:
    event = make_residence_event(move())
    fake = FakeMoves(found=mover())
    await ResidenceChangedHandler(fake, fake).handle(event, move(), "civil.079.residence_changed")
    assert fake.kept == 1 and len(fake.started) == 1

    stored = ChangeCase(change_id=uuid.uuid4(), person_id=uuid.uuid4())
    again = FakeMoves(stored=stored, found=mover(current_household_id=HOUSEHOLD))  # the move already happened
    await ResidenceChangedHandler(again, again).handle(event, move(), "civil.079.residence_changed")
    assert again.kept == 0 and again.started == [stored]

    for fake in (FakeMoves(found=None), FakeMoves(found=mover(deceased=True))):
        with pytest.raises(InvalidEvent) as err:
            await ResidenceChangedHandler(fake, fake).handle(event, move(), "civil.079.residence_changed")
        assert err.value.reasons in ([UNKNOWN_CITIZEN], [DECEASED]) and not fake.started


def correction(**corrected: Any) -> BirthCorrected:
    return BirthCorrected.model_validate({
        "registration_number": "T0123456789", "province_code": "079", "office_code": "UBND-079",
        "corrected_at": datetime.now(UTC) - timedelta(hours=1), "corrected": corrected})


def test_a_correction_round_trips_and_must_correct_something() -> None:
    payload = correction(full_name="  Nguyễn   Văn An ", sex="male")
    assert payload.corrected.given() == {"full_name": "Nguyễn Văn An", "sex": "male"}
    event, parsed = parse_correction_event(encode_event(make_correction_event(payload)))
    assert event.subject == "T0123456789" and parsed == payload
    with pytest.raises(ValueError, match="at least one of full_name, date_of_birth or sex"):
        correction()
    with pytest.raises(ValueError, match="the earliest birth year"):  # the birth event's own rule
        correction(date_of_birth="1850-01-01")


def test_correction_reasons_follow_the_birth_rules_and_quote_no_date() -> None:
    child = RegisteredChild(registration_id=uuid.uuid4(), registered_on=date(2025, 3, 1), person_id=uuid.uuid4(),
                            current={"full_name": "Lê An", "date_of_birth": date(2025, 2, 1), "sex": "female"})
    assert correction_reasons(child, CorrectedFields(date_of_birth=date(2025, 3, 2))) == [BORN_AFTER_REGISTRATION]
    assert correction_reasons(child, CorrectedFields(date_of_birth=date(1904, 1, 1))) == [born_too_long_before()]
    assert correction_reasons(child, CorrectedFields(full_name="Lê An", sex="female")) == [NOTHING_CHANGED]
    assert correction_reasons(child, CorrectedFields(full_name="Lê An", sex="male")) == []
    for reason in (BORN_AFTER_REGISTRATION, born_too_long_before(), NOTHING_CHANGED, UNKNOWN_REGISTRATION):
        assert "2025" not in reason and "1904" not in reason and reason.startswith("data.")


class FakeCorrections(FakeMoves):
    def __init__(self, child: RegisteredChild | None) -> None:
        super().__init__()
        self.child = child

    async def stored_correction(self, event: CloudEvent) -> ChangeCase | None:
        return self.stored

    async def find_registered_child(self, payload: BirthCorrected) -> RegisteredChild | None:
        return self.child

    async def store_correction(self, event: CloudEvent, payload: BirthCorrected,
                               child: RegisteredChild) -> ChangeCase:
        self.kept += 1
        return ChangeCase(change_id=uuid.uuid4(), person_id=child.person_id or uuid.uuid4())


async def test_correction_handler() -> None:
    payload = correction(sex="male")
    event = make_correction_event(payload)
    child = RegisteredChild(registration_id=uuid.uuid4(), registered_on=date(2025, 3, 1), person_id=uuid.uuid4(),
                            current={"full_name": "Lê An", "date_of_birth": date(2025, 2, 1), "sex": "female"})
    fake = FakeCorrections(child)
    await BirthCorrectedHandler(fake, fake).handle(event, payload, "civil.079.birth_corrected")
    assert fake.kept == 1 and len(fake.started) == 1

    with pytest.raises(InvalidEvent) as err:
        unknown = FakeCorrections(None)
        await BirthCorrectedHandler(unknown, unknown).handle(event, payload, "civil.079.birth_corrected")
    assert err.value.reasons == [UNKNOWN_REGISTRATION]

    waiting = FakeCorrections(RegisteredChild(registration_id=uuid.uuid4(), registered_on=date(2025, 3, 1),
                                              person_id=None, current={}))
    with pytest.raises(RegistrationNotRecorded):  # not a dead letter: redelivered once the child is recorded
        await BirthCorrectedHandler(waiting, waiting).handle(event, payload, "civil.079.birth_corrected")


def test_both_events_have_a_schema_and_a_channel() -> None:
    rendered = render_all()
    for name in ("residence_changed", "birth_corrected"):
        schema = json.loads(rendered[f"events/schemas/{name}.schema.json"])
        assert schema["additionalProperties"] is False
    asyncapi = json.loads(rendered[ASYNCAPI_PATH])
    assert asyncapi["channels"]["civilResidenceChanged"]["address"] == "civil.{province}.residence_changed"
    assert asyncapi["channels"]["civilBirthCorrected"]["address"] == "civil.{province}.birth_corrected"
    assert {"receiveResidenceChanged", "receiveBirthCorrected"} <= set(asyncapi["operations"])


@pytest.mark.parametrize("language", LANGUAGES)
def test_change_notices_render(language: str) -> None:
    renderer = NoticeRenderer()
    subject, body = renderer.render("residence_changed", language, {
        "child_name": "Nguyễn Minh An", "moved_on": date(2026, 3, 1), "household_number": "HK07900000002",
        "address": "1 Lê Lợi, Phường 1, Quận 1, Hồ Chí Minh"})
    assert "Nguyễn Minh An" in subject and "HK07900000002" in body
    subject, body = renderer.render("birth_corrected", language, {
        "child_name": "Nguyễn Minh Anh", "changed": {"full_name": "Nguyễn Minh Anh"}, "new_personal_id_number": None})
    assert "Nguyễn Minh Anh" in subject and "Nguyễn Minh Anh" in body and "079" not in body
    _, body = renderer.render("birth_corrected", language, {
        "child_name": "An", "changed": {"sex": "male", "date_of_birth": date(2025, 1, 2)},
        "new_personal_id_number": "079225000042"})
    assert "079225000042" in body and ("02/01/2025" in body or "02 January 2025" in body)
