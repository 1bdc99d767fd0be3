"""The committed JSON Schemas accept the events the demo and the producers really send, judged by a standard
validator (`check-jsonschema`, formats checked), not by our own models."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from demo import sample_events
from demo_life_events import life_events
from events.catalog import CONTRACTS
from events.schema import CLOUDEVENT_SCHEMA_PATH, PROJECT_ROOT
from events.vaccination_administered import VaccinationAdministered, make_vaccination_event
from registry.seed import first_family_in

CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


def real_events() -> list[dict]:
    """Every demo event (six births, a move, a correction, a death) and a dose as a health station sends it."""
    hanoi = first_family_in("001")
    dose = VaccinationAdministered(person_id_number=hanoi.mother.id_number, vaccine="BCG", dose=1,
                                   administered_on=date(2026, 11, 3), health_station_code="TYT-HN-01",
                                   province_code="001")
    raw = [*sample_events(), *(event for _, event in life_events(hanoi.mother.id_number, "DEMO26DN0001", "Ngọc Anh")),
           make_vaccination_event(dose, event_id="demo-dose-1").model_dump_json().encode()]
    return [json.loads(event) for event in raw]


def check_jsonschema(schema: Path, instances: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHECK_JSONSCHEMA), "--schemafile", str(schema), *map(str, instances)],
                          capture_output=True, text=True, timeout=120)


def write_instances(folder: Path, name: str, documents: list[dict]) -> list[Path]:
    paths = []
    for index, document in enumerate(documents):
        path = folder / f"{name}-{index}.json"
        path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return real_events()


def test_every_event_type_has_a_real_sample(events: list[dict]) -> None:
    assert {c.event_type for c in CONTRACTS} == {e["type"] for e in events}


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.subject_event)
def test_payload_schema_accepts_the_real_payloads(contract, events: list[dict], tmp_path: Path) -> None:
    payloads = [e["data"] for e in events if e["type"] == contract.event_type]
    result = check_jsonschema(PROJECT_ROOT / contract.schema_path,
                              write_instances(tmp_path, contract.subject_event, payloads))
    assert result.returncode == 0, result.stdout + result.stderr


def test_envelope_schema_accepts_every_real_event(events: list[dict], tmp_path: Path) -> None:
    binary_style = {**events[0], "datacontenttype": "application/json; charset=utf-8"}
    result = check_jsonschema(PROJECT_ROOT / CLOUDEVENT_SCHEMA_PATH,
                              write_instances(tmp_path, "event", [*events, binary_style]))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_what_the_model_rejects(events: list[dict], tmp_path: Path) -> None:
    """The check can fail: a time of birth that is not a time of day and a non-JSON content type."""
    birth = next(e for e in events if e["data"].get("child"))
    bad_time = {**birth["data"], "child": {**birth["data"]["child"], "time_of_birth": "25:00"}}
    birth_schema = PROJECT_ROOT / next(c.schema_path for c in CONTRACTS if c.event_type == birth["type"])
    payload_result = check_jsonschema(birth_schema, write_instances(tmp_path, "bad-birth", [bad_time]))
    assert payload_result.returncode == 1, payload_result.stdout + payload_result.stderr
    assert "time_of_birth" in payload_result.stdout + payload_result.stderr

    envelope_result = check_jsonschema(PROJECT_ROOT / CLOUDEVENT_SCHEMA_PATH, write_instances(
        tmp_path, "bad-event", [{**birth, "datacontenttype": "text/plain"}]))
    assert envelope_result.returncode == 1, envelope_result.stdout + envelope_result.stderr
