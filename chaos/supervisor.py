"""The chaos supervisor: births published while the service's processes are kill -9'd and its servers restarted,
then the checks of :mod:`chaos.checks`.

It starts its own embedded stack (free ports, a temporary folder unless `--data-dir`), migrates and seeds it,
runs `worker.py --no-bridge` ×W and `worker.py --bridge-only` ×B as OS processes (restarted when they exit, as
systemd would), publishes N births at once as the civil-status offices do, and follows the kill plan: each
action fires when the run's progress passes its mark (bridge kills on events received, the others on notices
sent), so they are spread over the run whatever the machine's speed.

    .venv/bin/python -m chaos.supervisor --births 1000 --worker-kills 3 --bridge-kills 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from chaos.checks import BirthRef, Check, registry_checks, stream_checks, workflow_checks
from cli.publishing import publish_raw
from events.models import encode_event, make_birth_event
from infra.nats_identities import ADMIN
from infra.service_processes import ServiceFleet, ServiceProcess
from infra.settings import Settings
from infra.stack import EmbeddedStack, free_port
from registry.db import Registry, make_engine
from registry.migrate import upgrade_async
from registry.models import Notification, ReceivedEvent
from registry.seed import family, seed_population, synthetic_birth
from worker import provision_streams
from workflows.contracts import BIRTH_STAGES

PROGRESS_EVERY_SECONDS = 5.0
POLL_SECONDS = 0.25


async def poll_until(condition: Callable[[], bool]) -> None:
    """Until `condition` holds (the progress it reads is refreshed by the run's own loop, which has the deadline)."""
    while True:
        if condition():
            return
        await asyncio.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class ChaosPlan:
    births: int = 1000
    workers: int = 2
    bridges: int = 2
    worker_kills: int = 3
    bridge_kills: int = 2
    temporal_restarts: int = 1
    postgres_restarts: int = 1
    deadline_seconds: float = 1800.0
    """How long, from publishing, the run may take to complete before the checks run anyway."""


@dataclass(frozen=True)
class Action:
    kind: str  # worker | bridge | temporal | postgres
    at: float  # fraction of the metric below
    metric: str  # received | notices


def kill_schedule(plan: ChaosPlan) -> list[Action]:
    """Bridge kills spread over the events being received; worker kills and server restarts interleaved and
    spread over the notices being sent (10 %…90 %)."""
    bridge = [Action("bridge", (i + 1) / (plan.bridge_kills + 1) * 0.9, "received") for i in range(plan.bridge_kills)]
    servers = ["temporal"] * plan.temporal_restarts + ["postgres"] * plan.postgres_restarts
    kinds: list[str] = []
    workers = plan.worker_kills
    while workers or servers:
        if workers:
            kinds.append("worker")
            workers -= 1
        if servers:
            kinds.append(servers.pop(0))
    spaced = [Action(kind, 0.1 + 0.8 * i / max(1, len(kinds) - 1), "notices") for i, kind in enumerate(kinds)]
    return bridge + spaced


@dataclass
class Progress:
    births: int
    received: int = 0
    notices: int = 0

    def fraction(self, metric: str) -> float:
        done = self.received if metric == "received" else self.notices
        return done / (self.births * (1 if metric == "received" else len(BIRTH_STAGES)))

    def line(self) -> str:
        return (f"received {self.received}/{self.births}, notices {self.notices}/{self.births * len(BIRTH_STAGES)} "
                f"({self.fraction('notices'):.0%})")


@dataclass
class ChaosResult:
    checks: list[Check]
    actions: list[str]
    seconds: float
    restarts: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)


def chaos_settings(data_dir: Path) -> Settings:
    return Settings(LIFEEVENTS_DATA_DIR=data_dir, TEMPORAL_PORT=free_port(), TEMPORAL_UI_PORT=free_port(),
                    NATS_PORT=free_port(), POSTGRES_PORT=free_port(), TEMPORAL_ADDRESS=None, NATS_URL=None,
                    DATABASE_URL=None, TEMPORAL_TASK_QUEUE="life-events-chaos", BRIDGE_MAX_BACKOFF_SECONDS=1.0)


def birth_events(count: int, population: int) -> tuple[list[BirthRef], list[bytes]]:
    refs, events = [], []
    for i in range(count):
        payload = synthetic_birth(family(i % population), registration_number=f"CHAOS{i:07d}",
                                  date_of_birth=date.today() - timedelta(days=3 + i % 25),
                                  sex="male" if i % 2 else "female")
        refs.append(BirthRef(payload.province_code, payload.registration_number))
        events.append(encode_event(make_birth_event(payload)))
    return refs, events


class ChaosRun:
    def __init__(self, plan: ChaosPlan, settings: Settings, out: Callable[[str], None]) -> None:
        self.plan = plan
        self.settings = settings
        self.out = out
        self.stack = EmbeddedStack(settings, headless_ui=True)
        self.fleet = ServiceFleet.build(settings, plan.workers, plan.bridges,
                                        extra_env={"BRIDGE_MAX_BACKOFF_SECONDS": "1.0"})
        self.progress = Progress(plan.births)
        self.actions: list[str] = []
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        self.out(f"[{time.monotonic() - self.started:6.1f}s] {text}")

    async def execute(self) -> ChaosResult:
        await asyncio.to_thread(self.stack.start)
        registry = Registry(make_engine(self.settings.database_url))
        try:
            await upgrade_async(self.settings.database_owner_url, self.settings.database_app_role)
            population = max(self.plan.births, 100)
            await seed_population(registry, population)
            self.say(f"stack up in {self.settings.data_dir}; {population} families seeded; starting "
                     f"{self.plan.workers} worker and {self.plan.bridges} bridge processes")
            await provision_streams(self.settings)  # before publishing, as the service's start-up would
            self.fleet.start()
            refs, events = birth_events(self.plan.births, population)
            published = await publish_raw(self.settings, events, progress=False)
            self.say(f"published {len(published)} births "
                     f"({sum(1 for p in published if p['duplicate'])} duplicates refused)")
            chaos = asyncio.create_task(self._follow_plan())
            complete = await self._wait_until_complete(registry, chaos)
            if not chaos.done():
                chaos.cancel()
            self.say(f"{'complete' if complete else 'DEADLINE PASSED'}: {self.progress.line()}")
            planned = len(kill_schedule(self.plan))
            checks = [Check("kill plan carried out", len(self.actions) == planned,
                            f"{len(self.actions)}/{planned} actions"),
                      *await self._check(registry, refs, [int(p["stream_sequence"]) for p in published])]
        finally:
            await self.fleet.stop()
            await registry.close()
            await asyncio.to_thread(self.stack.stop)
        restarts = {p.name: p.starts - 1 for p in self.fleet.processes}
        return ChaosResult(checks, self.actions, time.monotonic() - self.started, restarts)

    async def _follow_plan(self) -> None:
        schedule = kill_schedule(self.plan)
        await asyncio.gather(*(self._run_actions([a for a in schedule if a.metric == metric])
                               for metric in ("received", "notices")))

    async def _run_actions(self, actions: list[Action]) -> None:
        turns = {"worker": 0, "bridge": 0}
        for action in actions:
            await poll_until(lambda a=action: self.progress.fraction(a.metric) >= a.at)  # type: ignore[misc]
            mark = f"at {action.metric} {self.progress.fraction(action.metric):.0%} (planned {action.at:.0%})"
            if action.kind in turns:
                group = self.fleet.workers if action.kind == "worker" else self.fleet.bridges
                target = group[turns[action.kind] % len(group)]
                turns[action.kind] += 1
                pid = await self._kill(target)
                self._record(f"kill -9 {target.name} (pid {pid}) {mark}")
            elif action.kind == "temporal":
                took = await self._timed(self.stack.stop_temporal, self.stack.start_temporal)
                self._record(f"restarted Temporal (same database file) in {took:.1f}s {mark}")
            else:
                took = await self._timed(lambda: self.stack.stop_postgres(mode="immediate"),
                                         self.stack.start_postgres)
                self._record(f"restarted PostgreSQL (immediate stop, crash recovery) in {took:.1f}s {mark}")

    def _record(self, text: str) -> None:
        self.actions.append(text)
        self.say(text)

    async def _kill(self, target: ServiceProcess) -> int:
        await poll_until(lambda: target.pid is not None)  # being restarted: wait for it to run again
        pid = target.pid or 0
        target.kill()
        return pid

    async def _timed(self, stop: Callable[[], None], start: Callable[[], None]) -> float:
        began = time.monotonic()
        await asyncio.to_thread(stop)
        await asyncio.to_thread(start)
        return time.monotonic() - began

    async def _wait_until_complete(self, registry: Registry, chaos: asyncio.Task[None]) -> bool:
        deadline = time.monotonic() + self.plan.deadline_seconds
        expected = self.plan.births * len(BIRTH_STAGES)
        last_line = 0.0
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # PostgreSQL may be restarting
                async with registry.unit_of_work() as session:
                    self.progress.received = int(await session.scalar(
                        select(func.count()).select_from(ReceivedEvent)) or 0)
                    self.progress.notices = int(await session.scalar(
                        select(func.count()).select_from(Notification)
                        .where(Notification.stage.in_([s.value for s in BIRTH_STAGES]))) or 0)
            if chaos.done() and chaos.exception() is not None:
                raise chaos.exception()  # type: ignore[misc]
            if chaos.done() and self.progress.notices >= expected:
                return True
            if time.monotonic() - last_line >= PROGRESS_EVERY_SECONDS:
                self.say(self.progress.line())
                last_line = time.monotonic()
            await asyncio.sleep(POLL_SECONDS)
        return False

    async def _check(self, registry: Registry, refs: list[BirthRef], sequences: list[int]) -> list[Check]:
        from worker import connect_nats, connect_temporal

        client = await connect_temporal(self.settings)
        nc = await connect_nats(self.settings, ADMIN, name="chaos-checks")  # reads streams and consumers
        try:
            # The last workflows may still be closing after their sixth notice: wait for them with the deadline,
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                running = await client.count_workflows("LifeEvent = 'birth' AND ExecutionStatus = 'Running'")
                if not running.count:
                    break
                await asyncio.sleep(POLL_SECONDS)
            # and the notice dispatcher may still be pushing the last announcements
            js = nc.jetstream()
            while time.monotonic() < deadline:
                state = await js.consumer_info(self.settings.notify_stream, self.settings.notice_dispatch_durable)
                if not state.num_pending and not state.num_ack_pending:
                    break
                await asyncio.sleep(POLL_SECONDS)
            return [*await workflow_checks(client, refs), *await registry_checks(registry, refs),
                    *await stream_checks(self.settings, nc.jetstream(), registry, sequences)]
        finally:
            await nc.drain()


async def run_chaos(plan: ChaosPlan, data_dir: Path | None = None,
                    out: Callable[[str], None] = print) -> ChaosResult:
    """One chaos run on a stack of its own; its folder is removed afterwards unless given or the run failed."""
    folder = data_dir or Path(tempfile.mkdtemp(prefix="lifeevents-chaos-"))
    result = await ChaosRun(plan, chaos_settings(folder), out).execute()
    if data_dir is None and result.passed:
        shutil.rmtree(folder, ignore_errors=True)
    elif not result.passed:
        out(f"logs kept in {folder / 'logs'}")
    return result


def report(plan: ChaosPlan, result: ChaosResult) -> list[str]:
    lines = [f"chaos run: {plan.births} births, {plan.workers} worker + {plan.bridges} bridge processes, "
             f"{result.seconds:.0f}s", "actions:", *(f"  {a}" for a in result.actions),
             "process restarts: " + ", ".join(f"{name} {n}" for name, n in result.restarts.items()), "checks:",
             *(f"  {c.line()}" for c in result.checks),
             f"{'ALL CHECKS PASSED' if result.passed else 'SOME CHECKS FAILED'}"]
    return lines


async def _until_signalled(run: Coroutine[Any, Any, ChaosResult]) -> ChaosResult:
    """SIGTERM/SIGINT cancel the run, so its processes and servers are still stopped."""
    task = asyncio.create_task(run)
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    return await task


def main() -> None:
    from infra.process import exit_now

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = ChaosPlan()
    parser.add_argument("--births", type=int, default=defaults.births)
    parser.add_argument("--workers", type=int, default=defaults.workers, help="worker processes")
    parser.add_argument("--bridges", type=int, default=defaults.bridges, help="bridge processes")
    parser.add_argument("--worker-kills", type=int, default=defaults.worker_kills)
    parser.add_argument("--bridge-kills", type=int, default=defaults.bridge_kills)
    parser.add_argument("--temporal-restarts", type=int, default=defaults.temporal_restarts)
    parser.add_argument("--postgres-restarts", type=int, default=defaults.postgres_restarts)
    parser.add_argument("--deadline", type=float, default=defaults.deadline_seconds,
                        help="seconds the run may take after publishing")
    parser.add_argument("--data-dir", type=Path, help="keep the stack's files here (default: a temporary folder)")
    args = parser.parse_args()
    plan = ChaosPlan(args.births, args.workers, args.bridges, args.worker_kills, args.bridge_kills,
                     args.temporal_restarts, args.postgres_restarts, args.deadline)
    result = asyncio.run(_until_signalled(run_chaos(plan, args.data_dir, lambda line: print(line, flush=True))))
    print("\n".join(report(plan, result)), flush=True)
    exit_now(0 if result.passed else 1)


if __name__ == "__main__":
    main()
