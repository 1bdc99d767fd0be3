"""The generated contracts in events/schemas/ are current and self-consistent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events import schema
from events.birth_registered import BIRTH_DATASCHEMA, BIRTH_REGISTERED
from events.schema import (
    ASYNCAPI_PATH,
    BIRTH_SCHEMA_PATH,
    CLOUDEVENT_SCHEMA_PATH,
    VACCINATION_SCHEMA_PATH,
    render_all,
    stale_files,
)
from events.vaccination_administered import VACCINATION_ADMINISTERED, VACCINATION_DATASCHEMA

ROOT = Path(__file__).resolve().parents[2]


def _refs(node: Any, where: str = "#") -> Iterator[tuple[str, str]]:
    """Every ``$ref`` in a JSON document as ``(location, target)``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield where, value
            else:
                yield from _refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _refs(item, f"{where}/{index}")


def _resolve(document: Any, ref: str) -> Any:
    """Resolve a local JSON pointer reference (``#/a/b``); ``KeyError`` if it points nowhere."""
    if not ref.startswith("#/"):
        raise KeyError(f"{ref} is not a reference inside the document")
    node = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise KeyError(ref)
    return node


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return render_all()


@pytest.fixture(scope="module")
def asyncapi(rendered: dict[str, str]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(rendered[ASYNCAPI_PATH])
    return document


def test_committed_files_are_current(rendered: dict[str, str]) -> None:
    assert {BIRTH_SCHEMA_PATH, VACCINATION_SCHEMA_PATH, CLOUDEVENT_SCHEMA_PATH, ASYNCAPI_PATH} <= set(rendered)
    assert "events/schemas/death_registered.schema.json" in rendered
    for rel, text in rendered.items():
        path = ROOT / rel
        assert path.is_file(), f"{rel} is missing: run `python -m events.schema`"
        assert path.read_text(encoding="utf-8") == text, f"{rel} is stale: run `python -m events.schema`"


def test_rendering_is_deterministic_and_formatted(rendered: dict[str, str]) -> None:
    assert render_all() == rendered
    for rel, text in rendered.items():
        assert text.endswith("}\n") and not text.endswith("\n\n"), rel
        assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n", rel


def test_check_lists_stale_files(tmp_path: Path, rendered: dict[str, str]) -> None:
    for rel, text in rendered.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    assert stale_files(tmp_path) == []

    (tmp_path / CLOUDEVENT_SCHEMA_PATH).write_text("{}\n", encoding="utf-8")
    (tmp_path / ASYNCAPI_PATH).unlink()

    assert stale_files(tmp_path) == [CLOUDEVENT_SCHEMA_PATH, ASYNCAPI_PATH]


def test_check_mode_exit_code(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(schema, "stale_files", lambda: [BIRTH_SCHEMA_PATH])
    assert schema.main(["--check"]) == 1
    assert BIRTH_SCHEMA_PATH in capsys.readouterr().err

    monkeypatch.setattr(schema, "stale_files", lambda: [])
    assert schema.main(["--check"]) == 0


def test_payload_schemas_have_id_and_title(rendered: dict[str, str]) -> None:
    birth = json.loads(rendered[BIRTH_SCHEMA_PATH])
    envelope = json.loads(rendered[CLOUDEVENT_SCHEMA_PATH])

    assert birth["$id"] == BIRTH_DATASCHEMA and birth["title"]
    assert envelope["$id"] and envelope["title"]
    assert set(birth["$defs"]) == {"Child", "Parent", "Informant"}
    assert birth["additionalProperties"] is False
    assert envelope["properties"]["specversion"]["const"] == "1.0"
    assert {ref for _, ref in _refs(birth)} == {"#/$defs/Child", "#/$defs/Parent", "#/$defs/Informant"}

    vaccination = json.loads(rendered[VACCINATION_SCHEMA_PATH])
    assert vaccination["$id"] == VACCINATION_DATASCHEMA and vaccination["title"]
    assert vaccination["additionalProperties"] is False
    assert set(vaccination["required"]) == {"person_id_number", "vaccine", "dose", "administered_on",
                                            "health_station_code", "province_code"}
    assert vaccination["properties"]["dose"]["minimum"] == 1
    assert vaccination["properties"]["administered_on"]["format"] == "date"


def test_asyncapi_version_and_every_ref_resolves(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    refs = list(_refs(asyncapi))
    assert len(refs) >= 10
    unresolved = []
    for where, ref in refs:
        try:
            _resolve(asyncapi, ref)
        except (KeyError, IndexError, ValueError):
            unresolved.append(f"{where}: {ref}")
    assert unresolved == []
    assert not any("$defs" in ref for _, ref in refs)


def test_asyncapi_describes_birth_channel_and_dead_letters(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["info"]["title"] == "Life-event orchestration — civil and health events"
    assert asyncapi["servers"]["nats"] == {
        "host": "localhost:4222",
        "protocol": "nats",
        "description": asyncapi["servers"]["nats"]["description"],
    }

    birth = asyncapi["channels"]["civilBirthRegistered"]
    assert birth["address"] == "civil.{province}.birth_registered"
    assert set(birth["parameters"]) == {"province"}
    receive = [op for op in asyncapi["operations"].values() if op["action"] == "receive"]
    assert {op["channel"]["$ref"] for op in receive} >= {"#/channels/civilBirthRegistered",
                                                         "#/channels/healthVaccinationAdministered"}

    message = _resolve(asyncapi, birth["messages"]["BirthRegistered"]["$ref"])
    payload = _resolve(asyncapi, message["payload"]["$ref"])
    envelope_ref, specialised = payload["allOf"]
    assert _resolve(asyncapi, envelope_ref["$ref"])["properties"]["specversion"]["const"] == "1.0"
    assert specialised["properties"]["type"]["const"] == BIRTH_REGISTERED
    data = _resolve(asyncapi, specialised["properties"]["data"]["$ref"])
    assert "registration_number" in data["properties"]
    assert _resolve(asyncapi, data["properties"]["child"]["$ref"])["title"] == "Child"

    dead = asyncapi["channels"]["deadLetter"]
    assert dead["address"] == "dlq.{domain}.{province}.{event}"
    assert set(dead["parameters"]) == {"domain", "province", "event"}
    dead_message = _resolve(asyncapi, dead["messages"]["DeadLetter"]["$ref"])
    assert set(dead_message["headers"]["required"]) == {"Dead-Letter-Reason", "Original-Subject"}
    for name, channel in asyncapi["channels"].items():
        for parameter in channel.get("parameters", {}):
            assert f"{{{parameter}}}" in channel["address"], name


def test_asyncapi_describes_the_vaccination_channel(asyncapi: dict[str, Any]) -> None:
    channel = asyncapi["channels"]["healthVaccinationAdministered"]
    assert channel["address"] == "health.{province}.vaccination_administered"
    message = _resolve(asyncapi, channel["messages"]["VaccinationAdministered"]["$ref"])
    envelope_ref, specialised = _resolve(asyncapi, message["payload"]["$ref"])["allOf"]
    assert envelope_ref["$ref"] == "#/components/schemas/CloudEvent"
    assert specialised["properties"]["type"]["const"] == VACCINATION_ADMINISTERED
    assert specialised["properties"]["dataschema"]["const"] == VACCINATION_DATASCHEMA
    data = _resolve(asyncapi, specialised["properties"]["data"]["$ref"])
    assert "person_id_number" in data["properties"] and "subject" not in specialised["properties"]
