"""`worker.py` as the service runs it: SIGTERM drains and exits cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import pytest

from infra.settings import PROJECT_ROOT, Settings
from infra.stack import EmbeddedStack, free_port
from tests.helpers import read_until

pytestmark = pytest.mark.integration


async def test_sigterm_stops_worker_and_bridge_cleanly(settings: Settings, service: Any, tmp_path: Any) -> None:
    # A NATS of its own, so this bridge never takes events meant for the session's service.
    nats_only = Settings(LIFEEVENTS_DATA_DIR=tmp_path, NATS_PORT=free_port(), NATS_URL=None,
                         TEMPORAL_ADDRESS=settings.temporal_address, DATABASE_URL=settings.database_url)
    own_nats = EmbeddedStack(nats_only, headless_ui=True)
    own_nats.start()
    try:
        await _run_and_terminate(settings, nats_only)
    finally:
        own_nats.stop()


async def _run_and_terminate(settings: Settings, nats_only: Settings) -> None:
    env = {**os.environ, "TEMPORAL_ADDRESS": settings.temporal_address, "NATS_URL": nats_only.nats_url,
           "NATS_CREDENTIALS_DIR": str(nats_only.nats_credentials_dir),
           "DATABASE_URL": settings.database_url, "TEMPORAL_TASK_QUEUE": "life-events-sigterm-test",
           "BRIDGE_CIVIL_DURABLE": "civil-sigterm-test",
           "BRIDGE_HEALTH_DURABLE": "health-sigterm-test"}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(PROJECT_ROOT / "worker.py"), env=env,
                                                cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    lines: list[str] = []

    await asyncio.wait_for(read_until(proc, "bridge consuming", lines), timeout=60)
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(read_until(proc, "lifeevents.worker: stopped", lines), timeout=60)
    assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
