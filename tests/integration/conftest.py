"""Integration fixtures: real Temporal dev server, NATS JetStream and PostgreSQL, started from the pip wheels
on free ports in a temporary folder (never the demo's), plus the real worker and bridge in-process."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.metrics import temporal_metrics
from infra.settings import Settings
from infra.stack import EmbeddedStack, free_port
from registry.db import make_engine
from registry.migrate import upgrade_async
from registry.seed import seed_population

POPULATION = 400


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    """Under /tmp, not pytest's 0700 base folder: run as root, PostgreSQL runs as a system user that must reach
    the data folder, and the stack changes no folder's mode outside it."""
    with tempfile.TemporaryDirectory(prefix="lifeevents-stack-", ignore_cleanup_errors=True) as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
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


class RecordingSpans(SpanProcessor):
    """Hands finished spans to an in-memory exporter, only while a test records (the whole session's spans
    would otherwise pile up in memory)."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.active = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            self.exporter.export([span])

    @contextlib.contextmanager
    def recording(self) -> Iterator[InMemorySpanExporter]:
        self.exporter.clear()
        self.active = True
        try:
            yield self.exporter
        finally:
            self.active = False


@pytest.fixture(scope="session")
def span_recorder() -> RecordingSpans:
    """The process's TracerProvider (installed once, before the service starts), recording on demand."""
    recorder = RecordingSpans()
    provider = TracerProvider()
    provider.add_span_processor(recorder)
    trace.set_tracer_provider(provider)
    return recorder


@pytest.fixture(scope="session")
async def service(settings: Settings, stack: EmbeddedStack, span_recorder: RecordingSpans) -> AsyncIterator[object]:
    """Migrated and seeded registry, with the real worker, bridge and notice dispatcher running for the whole
    session (its Temporal client records the SDK's metrics; spans go to `span_recorder`)."""
    import worker

    await upgrade_async(settings.database_owner_url, settings.database_app_role)
    async with worker.service(settings, runtime=temporal_metrics().runtime) as svc:
        await seed_population(svc.registry, POPULATION)
        stop = asyncio.Event()
        temporal_worker = svc.worker()
        bridge = svc.bridge()
        tasks = [asyncio.create_task(temporal_worker.run()), asyncio.create_task(bridge.run(stop)),
                 asyncio.create_task(svc.notice_dispatcher().run(stop))]
        svc.bridge_instance = bridge  # type: ignore[attr-defined]
        try:
            yield svc
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await temporal_worker.shutdown()
            await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def owner_engine(settings: Settings, service: object) -> AsyncIterator[AsyncEngine]:
    """The schema owner's connection: what only the owner may do (tests that tamper with the ledger)."""
    engine = make_engine(settings.database_owner_url, pool_size=1)
    try:
        yield engine
    finally:
        await engine.dispose()


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
