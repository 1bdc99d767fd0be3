"""`worker.py --bridge-only` as operators run it: its own operator endpoint (BRIDGE_METRICS_PORT), spans written
to a file (TRACING=file) that continue the publisher's trace across NATS and are flushed when it stops."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.health import http_get
from infra.metrics import OTHER_EVENT_TYPE
from infra.settings import PROJECT_ROOT, Settings
from infra.stack import EmbeddedStack, free_port
from starter import publish_raw
from tests.helpers import eventually, read_until

pytestmark = pytest.mark.integration
DEAD_LETTERED = f'lifeevents_events_dead_lettered_total{{type="{OTHER_EVENT_TYPE}"}} 1.0'


async def test_bridge_process_serves_metrics_readiness_and_traces(settings: Settings, service: Any,
                                                                  span_recorder: Any, tmp_path: Path) -> None:
    own = Settings(LIFEEVENTS_DATA_DIR=tmp_path, NATS_PORT=free_port(), NATS_URL=None,
                   TEMPORAL_ADDRESS=settings.temporal_address, DATABASE_URL=settings.database_url)
    own_nats = EmbeddedStack(own, headless_ui=True)
    await asyncio.to_thread(own_nats.start)
    port, traces = free_port(), tmp_path / "traces.jsonl"
    env = {**os.environ, "TEMPORAL_ADDRESS": settings.temporal_address, "NATS_URL": own.nats_url,
           "NATS_CREDENTIALS_DIR": str(own.nats_credentials_dir),
           "DATABASE_URL": settings.database_url, "TEMPORAL_TASK_QUEUE": "life-events-operator-test",
           "BRIDGE_METRICS_PORT": str(port), "TRACING": "file", "TRACES_FILE": str(traces)}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(PROJECT_ROOT / "worker.py"), "--bridge-only",
                                                env=env, cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    output: list[str] = []

    try:
        await asyncio.wait_for(read_until(proc, "bridge consuming", output), timeout=60)
        status, body = await http_get("127.0.0.1", port, "/readyz")
        assert status == 200, body
        unknown = {"specversion": "1.0", "id": "op-1", "source": "/test/operator", "type": "vn.gov.civil.unknown",
                   "data": {"province_code": "079"}}
        with span_recorder.recording() as exporter:
            await publish_raw(own, [json.dumps(unknown).encode()], progress=False)
        [publish] = exporter.get_finished_spans()

        async def metrics() -> str:
            return (await http_get("127.0.0.1", port, "/metrics"))[1].decode()

        await eventually(metrics, lambda text: DEAD_LETTERED in text, within=30, what="the dead letter counted")
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(read_until(proc, "lifeevents.worker: stopped", output), timeout=60)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await asyncio.to_thread(own_nats.stop)

    spans = [json.loads(line) for line in traces.read_text().splitlines()]
    [processed] = [s for s in spans if s["name"] == f"process {OTHER_EVENT_TYPE}"]
    assert processed["context"]["trace_id"] == f"0x{publish.context.trace_id:032x}"
    assert processed["parent_id"] == f"0x{publish.context.span_id:016x}"
    assert processed["resource"]["attributes"]["service.name"] == "lifeevents-bridge"
    assert processed["attributes"]["lifeevents.outcome"] == "dead-lettered"
