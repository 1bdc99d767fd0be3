"""Benchmark: births per second through the whole path (NATS → bridge → Temporal → agencies → notices).

Starts its own stack on free ports in a temporary folder, runs the real worker and bridge in-process,
publishes N synthetic births at once and reports throughput and end-to-end latency (publish → sixth notice).

    .venv/bin/python bench/births_throughput.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

import worker  # noqa: E402
from events.models import encode_event, make_birth_event  # noqa: E402
from infra.settings import Settings  # noqa: E402
from infra.stack import EmbeddedStack, free_port  # noqa: E402
from registry.migrate import upgrade_async  # noqa: E402
from registry.models import BirthRegistration, Notification  # noqa: E402
from registry.seed import family, seed_population, synthetic_birth  # noqa: E402
from starter import publish_raw  # noqa: E402
from workflows.contracts import BIRTH_STAGES  # noqa: E402


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="lifeevents-bench-") as tmp:
        settings = Settings(LIFEEVENTS_DATA_DIR=Path(tmp), TEMPORAL_PORT=free_port(), TEMPORAL_UI_PORT=free_port(),
                            NATS_PORT=free_port(), POSTGRES_PORT=free_port(), TEMPORAL_ADDRESS=None, NATS_URL=None,
                            DATABASE_URL=None, BRIDGE_MAX_BACKOFF_SECONDS=1.0)
        stack = EmbeddedStack(settings, headless_ui=True)
        t0 = time.perf_counter()
        stack.start()
        print(f"stack started in {time.perf_counter() - t0:.1f}s")
        try:
            await upgrade_async(settings.database_owner_url, settings.database_app_role)
            async with worker.service(settings) as svc:
                await seed_population(svc.registry, 500)
                stop = asyncio.Event()
                w = svc.worker(max_concurrent_activities=64)
                tasks = [asyncio.create_task(w.run()), asyncio.create_task(svc.bridge().run(stop))]
                born = date.today() - timedelta(days=4)
                events = [encode_event(make_birth_event(synthetic_birth(
                    family(i % 500), registration_number=f"BENCH{i:07d}", date_of_birth=born,
                    sex="male" if i % 2 else "female"))) for i in range(count)]
                start = time.perf_counter()
                await publish_raw(settings, events, progress=False)
                published = time.perf_counter()
                expected = count * len(BIRTH_STAGES)
                while True:
                    async with svc.registry.unit_of_work() as session:
                        done = int(await session.scalar(select(func.count()).select_from(Notification)) or 0)
                    if done >= expected:
                        break
                    await asyncio.sleep(0.2)
                elapsed = time.perf_counter() - start
                async with svc.registry.unit_of_work() as session:
                    rows = (await session.execute(
                        select(BirthRegistration.received_at, func.max(Notification.created_at))
                        .join(Notification, Notification.citizen_person_id == BirthRegistration.child_person_id)
                        .group_by(BirthRegistration.id))).all()
                latencies = sorted((last - received).total_seconds() for received, last in rows)
                stop.set()
                await w.shutdown()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            stack.stop()
    q = statistics.quantiles(latencies, n=20)
    print(f"births: {count}; published in {published - start:.2f}s")
    print(f"all {expected} stages notified in {elapsed:.2f}s -> {count / elapsed:.1f} births/s")
    print(f"latency received -> last notice: p50 {statistics.median(latencies):.2f}s  p95 {q[18]:.2f}s  "
          f"max {latencies[-1]:.2f}s")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
