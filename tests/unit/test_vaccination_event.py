"""The vaccination-administered CloudEvent: payload rules, reasons without the ID number, and its handler."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from events import envelope
from events.envelope import CloudEvent, InvalidEvent, encode_event
from events.vaccination_administered import (
    VACCINATION_ADMINISTERED,
    VACCINATION_DATASCHEMA,
    VaccinationAdministered,
    VaccinationHandler,
    make_vaccination_event,
    parse_vaccination_event,
    vaccine_codes,
)
from registry.vaccinations import Citizen

CHILD_ID = "079324000123"  # HCMC, a girl born in 2024


def sample_data() -> dict[str, Any]:
    return {"person_id_number": CHILD_ID, "vaccine": "DPT_VGB_HIB", "dose": 2, "administered_on": "2024-08-01",
            "health_station_code": "TYT-Q1-BN", "province_code": "079"}


def sample_envelope(data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "vacc-0001", "source": "urn:vn:health:station:TYT-Q1-BN",
            "type": VACCINATION_ADMINISTERED, "time": "2024-08-01T10:00:00+07:00",
            "data": sample_data() if data is None else data}


def reasons_after(change: Callable[[dict[str, Any]], None]) -> list[str]:
    doc = sample_envelope()
    change(doc["data"])
    with pytest.raises(InvalidEvent) as info:
        parse_vaccination_event(json.dumps(doc).encode())
    return info.value.reasons


def test_valid_sample_parses_and_round_trips() -> None:
    event, payload = parse_vaccination_event(json.dumps(sample_envelope()).encode())

    assert event.type == VACCINATION_ADMINISTERED
    assert payload.vaccine == "DPT_VGB_HIB" and payload.dose == 2
    assert payload.administered_on == date(2024, 8, 1)
    again = make_vaccination_event(payload, event_id="vacc-0001", source=event.source, time=event.time)
    assert again.subject is None and again.dataschema == VACCINATION_DATASCHEMA  # no ID number in the subject
    assert parse_vaccination_event(encode_event(again)) == (again, payload)


def test_known_codes_come_from_the_schedule() -> None:
    assert {"BCG", "HEPB_BIRTH", "DPT_VGB_HIB", "MR"} <= vaccine_codes()


REJECTIONS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("short-id", lambda d: d.update(person_id_number="07932400012"),
     "data.person_id_number: must be 12 digits"),
    ("unknown-province-in-id", lambda d: d.update(person_id_number="999324000123"),
     "data.person_id_number: unknown province code '999'"),
    ("unknown-vaccine", lambda d: d.update(vaccine="SMALLPOX"),
     "data.vaccine: unknown vaccine code 'SMALLPOX' (rules/data/vaccination_schedule.yaml)"),
    ("lower-case-vaccine", lambda d: d.update(vaccine="bcg"), "data.vaccine: must match the pattern"),
    ("dose-zero", lambda d: d.update(dose=0), "data.dose: must be at least 1"),
    ("dose-string", lambda d: d.update(dose="2"), "data.dose: must be an integer"),
    ("future", lambda d: d.update(administered_on=(date.today() + timedelta(days=3)).isoformat()),
     "data.administered_on: is in the future (today in Asia/Ho_Chi_Minh)"),
    ("number-date", lambda d: d.update(administered_on=1722470400),
     "data.administered_on: must be an ISO 8601 string, not a number"),
    ("bad-station", lambda d: d.update(health_station_code="TYT Q1"), "data.health_station_code: must match"),
    ("unknown-province", lambda d: d.update(province_code="999"), "data.province_code: unknown province code"),
    ("missing-vaccine", lambda d: d.pop("vaccine"), "data.vaccine: is required"),
    ("extra-field", lambda d: d.update(batch="X1"), "data.batch: is not a known field"),
]


@pytest.mark.parametrize(("change", "reason"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_rule_rejects_with_reason(change: Callable[[dict[str, Any]], None], reason: str) -> None:
    reasons = reasons_after(change)
    assert any(r.startswith(reason) for r in reasons), reasons


def test_id_number_is_never_echoed() -> None:
    for bad in ("07932400012X", "999324000123", "0793240001234"):
        text = "; ".join(reasons_after(lambda d, bad=bad: d.update(person_id_number=bad)))  # type: ignore[misc]
        assert bad not in text and bad[3:] not in text, text


def test_birth_event_type_is_not_a_vaccination() -> None:
    doc = sample_envelope()
    doc["type"] = "vn.gov.civil.birth.registered"
    with pytest.raises(InvalidEvent, match="envelope.type: expected 'vn.gov.health.vaccination.administered'"):
        parse_vaccination_event(json.dumps(doc).encode())


def test_future_check_uses_the_clock_seam(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envelope, "_now_utc", lambda: datetime(2024, 7, 31, 12, 0, tzinfo=UTC))
    assert any("is in the future" in r for r in reasons_after(lambda d: None))


# ------------------------------------------------------------------------------------------ handler


class FakeRecords:
    def __init__(self, citizen: Citizen | None) -> None:
        self.citizen = citizen
        self.reports: dict[tuple[str, str], uuid.UUID] = {}
        self.workflow_ids: list[str] = []

    async def find_citizen(self, personal_id_number: str) -> Citizen | None:
        return self.citizen

    async def store_report(self, event: CloudEvent, payload: VaccinationAdministered, citizen: Citizen,
                           workflow_id: str) -> uuid.UUID:
        self.workflow_ids.append(workflow_id)
        return self.reports.setdefault((event.source, event.id), uuid.uuid4())


class FakeLifecycles:
    def __init__(self) -> None:
        self.signals: list[tuple[uuid.UUID, uuid.UUID]] = []

    async def dose_reported(self, person_id: uuid.UUID, report_id: uuid.UUID) -> None:
        self.signals.append((person_id, report_id))


def parsed() -> tuple[CloudEvent, VaccinationAdministered]:
    return parse_vaccination_event(json.dumps(sample_envelope()).encode())


async def test_handler_stores_once_and_signals_the_same_report_again_on_redelivery() -> None:
    person = uuid.uuid4()
    records, lifecycles = FakeRecords(Citizen(person, date(2024, 5, 1))), FakeLifecycles()
    handler = VaccinationHandler(records, lifecycles)
    event, payload = parsed()

    await handler.handle(event, payload, "health.079.vaccination_administered")
    await handler.handle(event, payload, "health.079.vaccination_administered")

    assert len(records.reports) == 1
    report = next(iter(records.reports.values()))
    assert lifecycles.signals == [(person, report), (person, report)]
    assert records.workflow_ids == [f"citizen-{person}"] * 2


async def test_handler_unknown_citizen_is_invalid_without_the_number() -> None:
    lifecycles = FakeLifecycles()
    handler = VaccinationHandler(FakeRecords(None), lifecycles)
    with pytest.raises(InvalidEvent) as info:
        await handler.handle(*parsed(), "health.079.vaccination_administered")

    assert info.value.reasons == ["data.person_id_number: no citizen with this personal ID number"]
    assert CHILD_ID not in str(info.value) and lifecycles.signals == []


async def test_handler_dose_before_birth_is_invalid() -> None:
    handler = VaccinationHandler(FakeRecords(Citizen(uuid.uuid4(), date(2024, 8, 2))), FakeLifecycles())
    with pytest.raises(InvalidEvent, match="data.administered_on: is before the child's date of birth"):
        await handler.handle(*parsed(), "health.079.vaccination_administered")
