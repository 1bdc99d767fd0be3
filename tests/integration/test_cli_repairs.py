"""The CLI an operator can trust: it never aborts or hangs, says one line when a server is down, and repairs
real stuck cases (`dlq replay`, `retry-failed --all`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import typing
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

import worker
from cli.common import EXIT_UNREACHABLE
from events.birth_registered import BirthHandler, parse_birth_event
from infra.settings import PROJECT_ROOT, Settings
from infra.stack import free_port
from starter import publish_raw
from tests.helpers import as_sent_by_producer, eventually
from tests.integration.test_birth_end_to_end import birth_event, child_of, wait_all_stages
from tests.integration.test_cli import cli
from tests.integration.test_moves_and_corrections import correction_of
from workflows.birth import BirthRegistrationWorkflow
from workflows.client import TemporalBirthStarter, birth_workflow_id
from workflows.contracts import BIRTH_AT_ONCE, with_notice

pytestmark = pytest.mark.integration


async def cli_with(env_changes: dict[str, str], settings: Settings, *args: str) -> tuple[int, str, str, float]:
    """starter.py with some settings changed (e.g. a NATS nobody listens on); also how long it took."""
    env = {**os.environ, "LIFEEVENTS_DATA_DIR": str(settings.data_dir), "TEMPORAL_ADDRESS": settings.temporal_address,
           "NATS_URL": settings.nats_url, "DATABASE_URL": settings.database_url,
           "TEMPORAL_TASK_QUEUE": settings.task_queue, **env_changes}
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(sys.executable, str(PROJECT_ROOT / "starter.py"), *args, env=env,
                                                cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode(), time.monotonic() - started


async def test_status_exits_zero_fifty_times_in_a_row(settings: Settings, service: Any) -> None:
    reg, raw = birth_event(81)
    await publish_raw(settings, [raw], progress=False)
    await wait_all_stages(service, [reg])
    codes = []
    for _ in range(50):
        code, out, err = await cli(settings, "status", reg)
        codes.append(code)
        assert "Fatal Python error" not in err
    assert codes == [0] * 50, codes


@pytest.mark.parametrize("command", [["dlq"], ["publish", "EVENTS"], ["dlq", "replay", "1"]])
async def test_with_nats_down_a_command_says_so_in_one_line_within_ten_seconds(
        settings: Settings, service: Any, tmp_path: Path, command: list[str]) -> None:
    events = tmp_path / "events.json"
    events.write_text(birth_event(82)[1].decode(), encoding="utf-8")
    args = [str(events) if a == "EVENTS" else a for a in command]
    nobody = f"nats://127.0.0.1:{free_port()}"
    code, out, err, took = await cli_with({"NATS_URL": nobody}, settings, *args)
    assert code == EXIT_UNREACHABLE, (code, out, err)
    assert took < 10, took
    assert err.splitlines() == [err.strip()] and err.startswith(f"error: cannot reach NATS at {nobody}"), err
    assert out == ""


async def test_with_temporal_down_retry_failed_all_says_so_as_json(settings: Settings, service: Any) -> None:
    code, out, err, took = await cli_with({"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}, settings,
                                          "retry-failed", "--all", "--json")
    assert code == EXIT_UNREACHABLE and took < 15
    report = json.loads(out)
    assert report["exit_code"] == EXIT_UNREACHABLE and report["error"].startswith("cannot reach Temporal")


async def dead_letter_sequence(admin_js: Any, settings: Settings, data: bytes) -> int:
    info = await admin_js.stream_info(settings.dlq_stream)
    if not info.state.messages:
        return 0
    for seq in range(info.state.last_seq, max(info.state.first_seq, 1) - 1, -1):
        msg = await admin_js.get_msg(settings.dlq_stream, seq)
        if as_sent_by_producer(msg.data or b"") == data:
            return seq
    return 0


async def test_dlq_replay_as_is_after_the_cause_is_fixed_and_with_a_corrected_file(
        settings: Settings, service: Any, admin_js: Any, tmp_path: Path) -> None:
    # a correction that arrived before its birth: dead-lettered (no such registration yet)
    reg, birth = birth_event(83)
    province = json.loads(birth)["data"]["province_code"]
    early = json.dumps(correction_of(reg, province, full_name="Lê Thị Sớm").model_dump(mode="json"),
                       ensure_ascii=False).encode()
    await publish_raw(settings, [early], progress=False)
    early_seq = await eventually(lambda: dead_letter_sequence(admin_js, settings, early), bool, within=30,
                                 what="the early correction dead-lettered")
    # a birth sent with an impossible date of birth, to be corrected by the office
    fixed_reg, good = birth_event(84)
    broken = json.loads(good)
    broken["data"]["child"]["date_of_birth"] = "2099-01-01"
    broken_bytes = json.dumps(broken, ensure_ascii=False).encode()
    await publish_raw(settings, [broken_bytes, birth], progress=False)
    broken_seq = await eventually(lambda: dead_letter_sequence(admin_js, settings, broken_bytes), bool, within=30,
                                  what="the broken birth dead-lettered")
    await wait_all_stages(service, [reg])

    code, out, err = await cli(settings, "dlq", "replay", str(early_seq))
    assert code == 0 and f"replayed dead letter #{early_seq}" in out, (out, err)
    child = await eventually(lambda: child_of(service, reg), lambda c: c.full_name == "Lê Thị Sớm", within=60,
                             what="the replayed correction applied")
    assert child.full_name == "Lê Thị Sớm"
    code, out, err = await cli(settings, "dlq", "replay", str(early_seq), "--json")
    assert code == 0 and json.loads(out)["duplicate"] is True  # the same replay again publishes nothing

    fixed = tmp_path / "fixed.json"
    fixed.write_text(good.decode(), encoding="utf-8")
    code, out, err = await cli(settings, "dlq", "replay", str(broken_seq), "--file", str(fixed), "--json")
    assert code == 0 and json.loads(out)["corrected"] is True, (out, err)
    await wait_all_stages(service, [fixed_reg])

    code, out, err = await cli(settings, "dlq", "replay", "999999")
    assert code == 3 and "no dead letter #999999" in err


@contextlib.asynccontextmanager
async def worker_with_a_broken_agency(service: Any, task_queue: str, broken: dict[str, bool]) -> Any:
    """The real workflows and agencies on their own task queue, except the school forecast, which fails without
    retrying while `broken["school"]` (an agency down for longer than the retry budget, shortened)."""
    activities = worker.build_activities(service.registry, service.js,
                                         worker.TemporalLifecycles(service.client, task_queue),
                                         data_dir=service.settings.data_dir)
    # alone, with its notice, and among every stage at once
    names = ("add_to_school_forecast", with_notice("add_to_school_forecast"), BIRTH_AT_ONCE)
    real = {a.__name__: a for a in activities if a.__name__ in names}

    def broken_while_scripted(name: str) -> Any:
        async def school_forecast(inp: Any) -> Any:
            if broken["school"]:
                raise ApplicationError("education registry down (scripted)", type="AgencyDown", non_retryable=True)
            return await real[name](inp)
        school_forecast.__annotations__ = typing.get_type_hints(real[name])  # the same input and result types
        return activity.defn(name=name)(school_forecast)

    others = [a for a in activities if a.__name__ not in names]
    async with Worker(service.client, task_queue=task_queue, workflows=worker.WORKFLOWS,
                      activities=[*others, *(broken_while_scripted(name) for name in names)]):
        yield


async def test_retry_failed_all_moves_every_stuck_birth_to_completion(settings: Settings, service: Any) -> None:
    task_queue, broken = "retry-all-test", {"school": True}
    starter = BirthHandler(service.registry, TemporalBirthStarter(service.client, task_queue))
    births = [birth_event(n) for n in (85, 86)]
    async with worker_with_a_broken_agency(service, task_queue, broken):
        for _, raw in births:
            event, payload = parse_birth_event(raw)
            await starter.handle(event, payload, f"civil.{payload.province_code}.birth_registered")
        handles = [service.client.get_workflow_handle(birth_workflow_id(json.loads(raw)["data"]["province_code"],
                                                                        reg)) for reg, raw in births]

        async def stuck() -> list[str | None]:
            return [await h.query(BirthRegistrationWorkflow.attention_reason) for h in handles]

        await eventually(stuck, lambda r: r == ["add_to_school_forecast-failing"] * 2, within=60,
                         what="both births waiting after the agency gave up")
        broken["school"] = False  # the agency is repaired
        await eventually(
            lambda: cli(settings, "retry-failed", "--all", "--reason", "add_to_school_forecast-failing", "--json"),
            lambda r: r[0] == 0 and {h.id for h in handles} <= set(json.loads(r[1])["retried"]), within=30,
            what="retry-failed --all retried both (visibility is eventually consistent)")
        for handle in handles:
            await asyncio.wait_for(handle.result(), timeout=60)
    await wait_all_stages(service, [reg for reg, _ in births])
