"""Integration fixtures: real Temporal dev server, NATS JetStream and PostgreSQL, started from the pip wheels
on free ports in a temporary folder (never the demo's), plus the real worker and bridge in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.settings import Settings
from infra.stack import EmbeddedStack, free_port
from registry.migrate import upgrade_async
from registry.seed import seed_population

POPULATION = 400


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("lifeevents-stack")
    return Settings(
        LIFEEVENTS_DATA_DIR=data_dir, TEMPORAL_PORT=free_port(), TEMPORAL_UI_PORT=free_port(),
        NATS_PORT=free_port(), POSTGRES_PORT=free_port(), TEMPORAL_ADDRESS=None, NATS_URL=None, DATABASE_URL=None,
        TEMPORAL_TASK_QUEUE="life-events-test", BRIDGE_MAX_BACKOFF_SECONDS=1.0, BRIDGE_CONCURRENCY=8,
    )


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[EmbeddedStack]:
    stack = EmbeddedStack(settings, headless_ui=True)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
async def service(settings: Settings, stack: EmbeddedStack) -> AsyncIterator[object]:
    """Migrated and seeded registry, with the real worker and bridge running for the whole session."""
    import worker

    await upgrade_async(settings.database_url)
    async with worker.service(settings) as svc:
        await seed_population(svc.registry, POPULATION)
        stop = asyncio.Event()
        temporal_worker = svc.worker()
        bridge = svc.bridge()
        tasks = [asyncio.create_task(temporal_worker.run()), asyncio.create_task(bridge.run(stop))]
        svc.bridge_instance = bridge  # type: ignore[attr-defined]
        try:
            yield svc
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await temporal_worker.shutdown()
            await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture(scope="session")
async def admin_js(settings: Settings, service: object) -> AsyncIterator[Any]:
    """JetStream as the `admin` identity, for tests that inspect streams and consumers (the service's own
    identities may not)."""
    import worker
    from infra.nats_identities import ADMIN

    nc = await worker.connect_nats(settings, ADMIN)
    try:
        yield nc.jetstream()
    finally:
        await nc.drain()
