"""Benchmark: births/s through the whole immediate fan-out, against the same-shape no-op ceilings, on ONE stack.

    .venv/bin/python -m bench.births_throughput [--births N]      (make bench; N defaults to 1,000)

In this order, on one embedded stack (Temporal dev server, NATS, PostgreSQL on free ports in a temp folder):
1. the ceilings: N no-op workflows of the birth's shape (bench/ceiling.py), regular and local activities, all
   started before the clock; then the local one again with starting them inside the clock, as ours does;
2. ours at full load: N births published to NATS before the clock starts, then the in-process worker, bridge and
   notice dispatcher are started and the clock runs until every birth has all six notices pushed to the apps;
   then, once the stack is idle, the local-activity ceiling again: ours is compared with the mean of the two;
3. a paced run at half the measured capacity for the publish → first / last notice percentiles;
4. births/s with 1, 2 and 4 `worker.py --no-bridge` processes and one `worker.py --bridge-only`.
Prints one table and writes it to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

import worker
from bench.ceiling import CEILING_TYPE_NAMES, CEILING_WORKFLOWS, noop_step
from bench.load import SEED_FAMILIES, Batch, notice_times, publish_paced, wait_until_notified
from bench.measure import CpuMeter, percentile, pid_from_file, rss_mib
from cli.publishing import publish_raw
from infra.process import exit_now
from infra.settings import PROJECT_ROOT, Settings
from infra.stack import EmbeddedStack, free_port
from registry.migrate import upgrade_async
from registry.seed import seed_population
from workflows.client import birth_workflow_id

RESULTS = PROJECT_ROOT / "bench" / "results" / "latest.json"
IN_PROCESS_ACTIVITY_SLOTS = 64
HISTORY_SAMPLE = 5
LOCAL_AFTER = "ceiling local activities, after ours"
"""The local-activity ceiling measured again right after ours, on the same grown Temporal database and the same
machine a minute later: ours is compared with the mean of the two readings that bracket it, so a drift of the
shared machine's load or of the server's database size during the run does not decide the ratio."""
PACED_SECONDS = 60.0


def stack_settings(data_dir: Path) -> Settings:
    return Settings(LIFEEVENTS_DATA_DIR=data_dir, TEMPORAL_PORT=free_port(), TEMPORAL_UI_PORT=free_port(),
                    NATS_PORT=free_port(), POSTGRES_PORT=free_port(), TEMPORAL_ADDRESS=None, NATS_URL=None,
                    DATABASE_URL=None, BRIDGE_MAX_BACKOFF_SECONDS=1.0)


class Bench:
    def __init__(self, settings: Settings, stack: EmbeddedStack, svc: worker.Service, births: int) -> None:
        self.settings, self.stack, self.svc, self.births = settings, stack, svc, births
        self.results: dict[str, Any] = {}

    def meter(self, service_pids: list[int]) -> CpuMeter:
        service: list[int | None] = list(service_pids)
        pg = pid_from_file(self.stack.data_dir / "postgres" / "postmaster.pid")
        return CpuMeter({"service": service, "temporal": [pid_from_file(self.stack.run_dir / "temporal.pid")],
                         "postgres": [pg], "nats": [pid_from_file(self.stack.run_dir / "nats.pid")]},
                        recursive={"temporal", "postgres"})

    # ---- 1. ceilings --------------------------------------------------------------------------------------
    async def ceiling(self, kind: str, *, starts_in_clock: bool = False) -> dict[str, float]:
        """N no-op workflows of the birth's shape. By default they are all started before the clock (the engine
        running queued workflows); with `starts_in_clock` the clock also covers starting them, 200 at a time,
        while the worker runs (the same scope as ours, whose bridge starts the births inside the clock)."""
        wf = CEILING_WORKFLOWS[kind]
        queue = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
        client: Client = self.svc.client
        ids = [f"{queue}-{i}" for i in range(self.births)]

        async def start_all() -> None:
            for chunk in range(0, len(ids), 200):
                await asyncio.gather(*(client.start_workflow(CEILING_TYPE_NAMES[kind], id=i, task_queue=queue)
                                       for i in ids[chunk:chunk + 200]))

        if not starts_in_clock:
            await start_all()  # before the clock: the worker is not polling yet
        meter = self.meter([os.getpid()])
        meter.start()
        start = time.monotonic()
        async with Worker(client, task_queue=queue, workflows=[wf], activities=[noop_step],
                          workflow_runner=worker.WORKFLOW_RUNNER,
                          max_concurrent_activities=IN_PROCESS_ACTIVITY_SLOTS):
            if starts_in_clock:
                await start_all()
            query = f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"
            while True:
                if not (await client.count_workflows(query)).count:
                    break
                await asyncio.sleep(0.5)
            elapsed = time.monotonic() - start
        cpu = meter.stop()
        events = statistics.median([len((await client.get_workflow_handle(i).fetch_history()).events)
                                    for i in ids[:HISTORY_SAMPLE]])
        return {"per_second": self.births / elapsed, "seconds": elapsed, "history_events": events,
                **{f"cpu_{k}_ms": 1000 * v / self.births for k, v in cpu.items()}}

    # ---- 2. ours at full load, 3. paced ------------------------------------------------------------------
    async def ours(self, *, paced: bool = True, ceiling_after: bool = True) -> None:
        full = Batch("BA", self.births)
        await publish_raw(self.settings, full.events(), progress=False)
        stop = asyncio.Event()
        meter = self.meter([os.getpid()])
        meter.start()
        start = time.monotonic()
        in_process = self.svc.worker()
        tasks = [asyncio.create_task(in_process.run()), asyncio.create_task(self.svc.bridge().run(stop)),
                 asyncio.create_task(self.svc.notice_dispatcher().run(stop))]  # as `worker.py` runs them
        try:
            done, share = await wait_until_notified(self.svc.registry, full, limit_seconds=60 + self.births * 5)
            cpu = meter.stop()
            rate = share * self.births / (done - start)
            self.results["ours"] = {"per_second": rate, "seconds": done - start, "completed_share": share,
                                    "history_events": await self.history_events(full),
                                    "worker_rss_mib": rss_mib([os.getpid()]),
                                    **{f"cpu_{k}_ms": 1000 * v / self.births for k, v in cpu.items()}}
            if ceiling_after:
                await self.settle([os.getpid()])
                self.results[LOCAL_AFTER] = await self.ceiling("local activities")
            if paced:
                await self.settle([os.getpid()])
                await self.paced(rate / 2)
        finally:
            stop.set()
            await in_process.shutdown()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def settle(self, service_pids: list[int], *, busy_share: float = 0.1, limit_seconds: float = 180) -> None:
        """Wait until the service and the Temporal server are nearly idle (under `busy_share` of a core over a
        second): the births' hand-overs to their lifecycles still run after their last notice, and a paced birth
        published into that tail would measure the tail, not its own latency."""
        deadline = time.monotonic() + limit_seconds
        while time.monotonic() < deadline:
            meter = self.meter(service_pids)
            meter.start()
            await asyncio.sleep(1.0)
            cpu = meter.stop()
            if cpu["service"] < busy_share and cpu["temporal"] < busy_share:
                return
        print(f"the stack was still busy after {limit_seconds:.0f}s; measuring latency anyway", flush=True)

    async def history_events(self, batch: Batch) -> float:
        """Median events in a birth workflow's history (a few sampled births; they are all alike)."""
        counts = []
        for i in range(min(HISTORY_SAMPLE, batch.count)):
            handle = self.svc.client.get_workflow_handle(await self.workflow_id(batch.number(i)))
            counts.append(len((await handle.fetch_history()).events))
        return statistics.median(counts)

    async def workflow_id(self, number: str) -> str:
        from sqlalchemy import select

        from registry.models import BirthRegistration
        async with self.svc.registry.unit_of_work() as session:
            province = await session.scalar(select(BirthRegistration.province_code)
                                            .where(BirthRegistration.registration_number == number))
        assert province is not None, number
        return birth_workflow_id(province, number)

    async def paced(self, rate: float) -> None:
        batch = Batch("BP", max(10, round(rate * PACED_SECONDS)))
        began = await publish_paced(self.settings, batch, rate)
        await wait_until_notified(self.svc.registry, batch, limit_seconds=120 + batch.count * 2)
        times = await notice_times(self.svc.registry, batch)  # a birth left unfinished counts as not notified
        first = [(times[n][0] - t).total_seconds() * 1000 if n in times else math.inf for n, t in began.items()]
        last = [(times[n][1] - t).total_seconds() * 1000 if n in times else math.inf for n, t in began.items()]
        self.results["paced"] = {"births": batch.count, "rate": rate, **{
            f"{name}_p{q}_ms": percentile(values, q) for name, values in (("first", first), ("last", last))
            for q in (50, 95, 99)}}

    # ---- 4. worker processes -----------------------------------------------------------------------------
    async def processes(self, workers: int) -> dict[str, float]:
        batch = Batch(f"BW{workers}", self.births)
        env = {**os.environ, "LIFEEVENTS_DATA_DIR": str(self.settings.data_dir),
               "TEMPORAL_PORT": str(self.settings.temporal_port), "NATS_PORT": str(self.settings.nats_port),
               "POSTGRES_PORT": str(self.settings.postgres_port), "BRIDGE_MAX_BACKOFF_SECONDS": "1"}
        logs = self.stack.log_dir
        async with AsyncExitStack() as procs:
            pids = [await procs.enter_async_context(_process(["--no-bridge"], env, logs / f"bench-w{workers}-{i}.log"))
                    for i in range(workers)]
            await publish_raw(self.settings, batch.events(), progress=False)
            meter = self.meter(pids)
            meter.start()
            start = time.monotonic()
            bridge = _process(["--bridge-only"], env, logs / f"bench-b{workers}.log")
            pids.append(await procs.enter_async_context(bridge))
            meter.groups["service"] = list(pids)
            limit = 60 + 3 * self.births / self.results["ours"]["per_second"]
            done, share = await wait_until_notified(self.svc.registry, batch, limit_seconds=limit)
            cpu = meter.stop()
            rss = rss_mib(pids[:-1]) / workers
        if share < 1:
            print(f"{workers} worker process(es): only {share:.0%} of the notices after {limit:.0f}s", flush=True)
        return {"per_second": share * self.births / (done - start), "completed_share": share, "worker_rss_mib": rss,
                "cpu_service_ms": 1000 * cpu["service"] / self.births}


class _process:
    """A `worker.py` subprocess, ready once it logs "running:"; SIGTERM (drain) on exit."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log

    async def __aenter__(self) -> int:
        self.file = self.log.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(PROJECT_ROOT / "worker.py"), *self.args, env=self.env, stdout=self.file,
            stderr=self.file, stdin=asyncio.subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while b"running:" not in self.log.read_bytes():
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker.py {' '.join(self.args)} did not start; see {self.log}")
            await asyncio.sleep(0.2)
        return self.proc.pid

    async def __aexit__(self, *exc: object) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.file.close()


PHASES = ("activities", "local", "started", "ours", "paced", "processes")
"""What a run measures, in this order; `--phases` picks some (e.g. `local ours` while tuning)."""


async def run(births: int, worker_counts: list[int], phases: tuple[str, ...] = PHASES) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lifeevents-bench-") as tmp:
        settings = stack_settings(Path(tmp))
        stack = EmbeddedStack(settings, headless_ui=True)
        stack.start()
        try:
            await upgrade_async(settings.database_owner_url, settings.database_app_role)
            async with worker.service(settings) as svc:
                await seed_population(svc.registry, SEED_FAMILIES)
                bench = Bench(settings, stack, svc, births)
                for kind in CEILING_WORKFLOWS:
                    if ("local" if kind == "local activities" else kind) not in phases:
                        continue
                    bench.results[f"ceiling {kind}"] = await bench.ceiling(kind)
                    print(f"ceiling ({kind}): {bench.results[f'ceiling {kind}']['per_second']:.1f} wf/s", flush=True)
                if "started" in phases:
                    started = bench.results["ceiling local activities, starts in the clock"] = await bench.ceiling(
                        "local activities", starts_in_clock=True)
                    print(f"ceiling (local activities, starts in the clock): {started['per_second']:.1f} wf/s",
                          flush=True)
                bench.results["processes"] = {}
                if "ours" in phases:
                    await bench.ours(paced="paced" in phases, ceiling_after="local" in phases)
                    print(f"ours: {bench.results['ours']['per_second']:.2f} births/s", flush=True)
                save(bench.results)
                for count in worker_counts if "processes" in phases and "ours" in phases else ():
                    bench.results["processes"][count] = await bench.processes(count)
                    save(bench.results)
                    print(f"{count} worker process(es): {bench.results['processes'][count]['per_second']:.2f} births/s",
                          flush=True)
        finally:
            stack.stop()
    load = os.getloadavg()
    return {"births": births, "cores": os.cpu_count(), "load_at_end": load, "python": platform.python_version(),
            **bench.results}


def save(results: dict[str, Any]) -> None:
    """Write what has been measured so far (a later phase that breaks loses nothing before it)."""
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")


def table(r: dict[str, Any]) -> str:
    act, ours, paced = r["ceiling activities"], r["ours"], r["paced"]
    local_before, local_after = r["ceiling local activities"], r[LOCAL_AFTER]
    local = {"per_second": (local_before["per_second"] + local_after["per_second"]) / 2,
             **{k: local_before[k] for k in ("history_events", "cpu_service_ms", "cpu_temporal_ms")}}
    started = r["ceiling local activities, starts in the clock"]
    rows = [
        ("births published at once", f"{r['births']}"),
        ("ours: births/s (whole immediate fan-out)", f"{ours['per_second']:.2f}"),
        ("ceiling, activities: wf/s", f"{act['per_second']:.2f}"),
        ("ceiling, local activities: wf/s, before ours / after ours (mean)",
         f"{local_before['per_second']:.2f} / {local_after['per_second']:.2f} ({local['per_second']:.2f})"),
        ("ours / activity ceiling", f"{ours['per_second'] / act['per_second']:.2f}"),
        ("ours / local-activity ceiling (mean; before, after)",
         f"{ours['per_second'] / local['per_second']:.2f} ({ours['per_second'] / local_before['per_second']:.2f}, "
         f"{ours['per_second'] / local_after['per_second']:.2f})"),
        ("ceiling, local activities, starts in the clock: wf/s (ours / it)",
         f"{started['per_second']:.2f} ({ours['per_second'] / started['per_second']:.2f})"),
        (f"paced at {paced['rate']:.2f}/s ({paced['births']} births): publish → first notice p50/p95/p99 ms",
         f"{paced['first_p50_ms']:.0f} / {paced['first_p95_ms']:.0f} / {paced['first_p99_ms']:.0f}"),
        ("publish → last notice p50/p95/p99 ms",
         f"{paced['last_p50_ms']:.0f} / {paced['last_p95_ms']:.0f} / {paced['last_p99_ms']:.0f}"),
        ("history events per birth workflow (ceilings: act / local)",
         f"{ours['history_events']:.0f} ({act['history_events']:.0f} / {local['history_events']:.0f})"),
        ("CPU ms per birth: service / Temporal / PostgreSQL / NATS",
         f"{ours['cpu_service_ms']:.0f} / {ours['cpu_temporal_ms']:.0f} / {ours['cpu_postgres_ms']:.0f} / "
         f"{ours['cpu_nats_ms']:.0f}"),
        ("CPU ms per wf, activity ceiling: worker / Temporal",
         f"{act['cpu_service_ms']:.0f} / {act['cpu_temporal_ms']:.0f}"),
        ("CPU ms per wf, local ceiling: worker / Temporal",
         f"{local['cpu_service_ms']:.0f} / {local['cpu_temporal_ms']:.0f}"),
        ("CPU ms per wf, local ceiling with its starts: worker / Temporal",
         f"{started['cpu_service_ms']:.0f} / {started['cpu_temporal_ms']:.0f}"),
        ("worker RSS MiB (in-process worker + bridge)", f"{ours['worker_rss_mib']:.0f}"),
        *((f"births/s with {n} worker process(es) + 1 bridge (RSS MiB each, service CPU ms/birth)",
           f"{p['per_second']:.2f} ({p['worker_rss_mib']:.0f}, {p['cpu_service_ms']:.0f})"
           + ("" if p["completed_share"] == 1 else f"; {p['completed_share']:.0%} done at the time limit"))
          for n, p in r["processes"].items()),
        ("targets: ≥ 0.6 × local ceiling / ≥ 1.0 × activity ceiling / first-notice p99 ≤ 500 ms / ≤ 40 events",
         " / ".join("met" if ok else "NOT met" for ok in (
             ours["per_second"] >= 0.6 * local["per_second"], ours["per_second"] >= act["per_second"],
             paced["first_p99_ms"] <= 500, ours["history_events"] <= 40))),
        ("cores / load average (1, 5, 15 min) at the end",
         f"{r['cores']} / {', '.join(f'{x:.2f}' for x in r['load_at_end'])}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--births", type=int, default=1000, help="births (and ceiling workflows) per phase")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4], help="worker process counts to try")
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES),
                        help="measure only these (the table needs all; a partial run prints its figures as JSON)")
    args = parser.parse_args()
    results = asyncio.run(run(args.births, args.workers, tuple(args.phases)))
    if set(args.phases) == set(PHASES):
        print(table(results))
    else:
        print(json.dumps(results, indent=2, default=str))
    save(results)
    print(f"written to {RESULTS.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
    exit_now(0)
