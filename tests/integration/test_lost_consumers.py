"""A real `worker.py --bridge-only` (its own NATS; the session's Temporal and PostgreSQL) when its NATS objects
disappear under it: a deleted durable consumer is created again and the next birth is still received; a deleted
stream ends the bridge task and the process exits 1 naming the task and the error, for its supervisor to restart
it (start-up provisions the stream again)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import worker
from infra.nats_identities import ADMIN
from infra.settings import PROJECT_ROOT, Settings
from infra.stack import EmbeddedStack, free_port
from registry.models import BirthRegistration
from starter import publish_raw
from tests.helpers import eventually, read_until
from tests.integration.test_birth_end_to_end import birth_event

pytestmark = pytest.mark.integration


async def test_bridge_recreates_a_deleted_consumer_and_exits_1_when_its_stream_is_gone(
        settings: Settings, service: Any, tmp_path: Path) -> None:
    own = Settings(LIFEEVENTS_DATA_DIR=tmp_path, NATS_PORT=free_port(), NATS_URL=None,
                   TEMPORAL_ADDRESS=settings.temporal_address, DATABASE_URL=settings.database_url)
    own_nats = EmbeddedStack(own, headless_ui=True)
    await asyncio.to_thread(own_nats.start)
    env = {**os.environ, "TEMPORAL_ADDRESS": settings.temporal_address, "NATS_URL": own.nats_url,
           "NATS_CREDENTIALS_DIR": str(own.nats_credentials_dir), "DATABASE_URL": settings.database_url,
           "TEMPORAL_TASK_QUEUE": "life-events-lost-consumers"}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(PROJECT_ROOT / "worker.py"), "--bridge-only",
                                                env=env, cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    output: list[str] = []

    admin = await worker.connect_nats(own, ADMIN)
    js = admin.jetstream()
    try:
        await asyncio.wait_for(read_until(proc, "bridge consuming", output), timeout=60)
        assert await js.delete_consumer(own.civil_stream, own.bridge_civil_durable)
        await asyncio.wait_for(read_until(proc, "no longer exists: creating it again", output), timeout=30)
        reg, raw = birth_event(province="079")
        await publish_raw(own, [raw], progress=False)

        async def received() -> str | None:
            async with service.registry.unit_of_work() as session:
                return await session.scalar(select(BirthRegistration.registration_number)
                                            .where(BirthRegistration.registration_number == reg))

        await eventually(received, lambda found: found == reg, within=30, what="the birth received after it")

        await js.delete_stream(own.civil_stream)
        returncode = await asyncio.wait_for(proc.wait(), timeout=60)
        assert proc.stdout is not None
        output.append((await proc.stdout.read()).decode())
        log = "".join(output)
        assert returncode == 1, log
        assert "exiting: the bridge task ended without a stop request: NotFoundError" in log, log
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await admin.drain()
        await asyncio.to_thread(own_nats.stop)
