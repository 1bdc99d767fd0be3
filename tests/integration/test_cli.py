"""The CLI contract, run as a citizen-service operator would: `python starter.py …` against the test stack."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.settings import PROJECT_ROOT, Settings
from tests.helpers import eventually
from tests.integration.test_birth_end_to_end import birth_event, wait_all_stages

pytestmark = pytest.mark.integration


async def cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "LIFEEVENTS_DATA_DIR": str(settings.data_dir),
           "TEMPORAL_ADDRESS": settings.temporal_address, "NATS_URL": settings.nats_url,
           "DATABASE_URL": settings.database_url, "TEMPORAL_TASK_QUEUE": settings.task_queue}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(PROJECT_ROOT / "starter.py"), *args,
                                                env=env, cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_publish_status_inbox_and_dlq(settings: Settings, service: Any, tmp_path: Path) -> None:
    reg, good = birth_event(60)
    bad = json.loads(good)
    bad["id"], bad["data"]["registration_number"] = "cli-bad-event", "CLIBAD0001"
    bad["data"]["mother"]["id_number"] = "12345"
    file = tmp_path / "events.json"
    file.write_text(json.dumps([json.loads(good), bad], ensure_ascii=False), encoding="utf-8")

    code, out, err = await cli(settings, "publish", str(file), "--json")
    assert code == 0, err
    published = json.loads(out)
    assert [p["duplicate"] for p in published] == [False, False] and published[1]["event_id"] == "cli-bad-event"
    await wait_all_stages(service, [reg])

    code, out, err = await cli(settings, "status", reg, "--json")
    assert code == 0, err
    status = json.loads(out)
    assert [s["state"] for s in status["stages"]] == ["done"] * 6
    assert status["workflow"]["status"] == "COMPLETED" and status["workflow"]["needs_attention"] is False
    id_number = status["child"]["personal_id_number"]
    assert status["health_insurance"]["card_number"].endswith(id_number)
    assert len(status["vaccination_plan"]) > 10 and status["school"]["entry_year"] > 2026

    code, out, err = await cli(settings, "inbox", id_number, "--json")
    assert code == 0, err
    notices = json.loads(out)
    assert len(notices) == 6 and notices[0]["stage"] == "birth_recorded"
    assert [n["delivered_at"] for n in notices] == sorted(n["delivered_at"] for n in notices)

    async def dlq() -> list[dict[str, Any]]:
        code, out, _ = await cli(settings, "dlq", "--json")
        assert code == 0
        return [e for e in json.loads(out) if "cli-bad-event" in e["data"]]

    entries = await eventually(dlq, lambda e: len(e) == 1, what="bad event in the dead-letter list", within=30)
    assert "data.mother.id_number" in entries[0]["reason"]


async def test_errors_name_the_argument_and_exit_non_zero(settings: Settings, service: Any) -> None:
    code, _, err = await cli(settings, "status", "NOSUCHREG1")
    assert code == 3 and "REGISTRATION_NO" in err
    code, _, err = await cli(settings, "inbox", "12345")
    assert code == 1 and "ID_NUMBER: must be 12 digits" in err
    code, _, err = await cli(settings, "simulate-births", "2", "--province", "999")
    assert code == 1 and "--province: unknown province code '999'" in err
    code, _, err = await cli(settings, "publish", "/nonexistent/file.json")
    assert code == 1 and "FILE: cannot read" in err


async def test_simulate_births_publishes_valid_births(settings: Settings, service: Any) -> None:
    code, out, err = await cli(settings, "simulate-births", "3", "--province", "048", "--json")
    assert code == 0, err
    results = json.loads(out)
    assert len(results) == 3 and all(r["subject"] == "civil.048.birth_registered" for r in results)


async def test_publish_of_a_file_with_no_events_says_so(settings: Settings, service: Any, tmp_path: Path) -> None:
    for name, content in (("empty-list.json", "[]"), ("blank.json", "  \n")):
        file = tmp_path / name
        file.write_text(content, encoding="utf-8")

        code, out, err = await cli(settings, "publish", str(file))

        assert (code, out, err) == (1, "", f"error: FILE: {file} holds no events\n")


async def test_publish_of_an_event_over_the_servers_limit_names_it_and_publishes_none(
        settings: Settings, service: Any, admin_js: Any, tmp_path: Path) -> None:
    _, first = birth_event(61)
    big = json.loads(first)
    big["id"], big["padding"] = "cli-big-event", "x" * 1_100_000
    _, last = birth_event(62)
    file = tmp_path / "events.json"
    file.write_text(json.dumps([json.loads(first), big, json.loads(last)]), encoding="utf-8")
    before = (await admin_js.stream_info(settings.civil_stream)).state.last_seq

    code, out, err = await cli(settings, "publish", str(file))

    assert code == 1 and out == ""
    size = len(json.dumps(big, ensure_ascii=False).encode())
    assert err.splitlines() == [
        f"error: event #2 of 3 (id 'cli-big-event') is {size:,} bytes; the server takes at most "
        "1,047,552 bytes per event (max_payload 1,048,576 less 1,024 for headers); nothing was published"]
    assert (await admin_js.stream_info(settings.civil_stream)).state.last_seq == before
