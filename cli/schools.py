"""CLI commands about primary schools: `load-schools`, `plan-schools` (see `starter.py --help`)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowFailureError

from cli.common import EXIT_OK, CliError, cli_temporal, print_json, registry_for
from infra.settings import Settings


def add_commands(add: Any) -> None:
    """Register this group's sub-commands (`add(name, help)` returns the sub-parser)."""
    add("load-schools", "load a list of primary schools and their grade-1 places from a CSV file "
        "(code,name,province_code,ward_code,grade1_places); it replaces all schools of the provinces it names"
        ).add_argument("file", metavar="FILE", type=Path)
    add_plan_command(add)


# ---- load-schools ------------------------------------------------------------------------------------------
async def cmd_load_schools(settings: Settings, args: argparse.Namespace) -> int:
    from registry.schools import SchoolCsvError, load_schools_csv, parse_schools_csv

    file: Path = args.file
    try:
        content = await asyncio.to_thread(file.read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"FILE: cannot read {file} ({exc})") from None
    registry = registry_for(settings)
    try:
        provinces = sorted({s.province_code for s in parse_schools_csv(content, source=str(file))})
        loaded = await load_schools_csv(registry, file)
    except SchoolCsvError as exc:
        raise CliError(str(exc)) from None
    finally:
        await registry.close()
    if args.json:
        print_json({"schools": loaded, "provinces": provinces})
    else:
        print(f"{loaded} schools loaded; they replace the schools of province(s) {', '.join(provinces)}")
    return EXIT_OK


# ---- plan-schools ------------------------------------------------------------------------------------------
def add_plan_command(add: Any) -> None:
    p = add("plan-schools", "run the school-capacity plan now: every province (the monthly schedule, triggered) "
            "or one province (a one-off plan); prints where the reports are and the wards short of places")
    p.add_argument("--province", metavar="CODE", help="plan this province only, e.g. 079")
    p.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                   help="wait for the plan and print its reports (default); --no-wait only starts it")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the plan (default 600)")


async def cmd_plan_schools(settings: Settings, args: argparse.Namespace) -> int:
    import rules
    from workflows.school_plan_client import SchedulePlanMissing, start_for_province, trigger_schedule

    if args.province is not None and not rules.is_known_province(args.province):
        raise CliError(f"--province: unknown province code '{args.province}'")
    try:
        client = await cli_temporal(settings)
    except (RuntimeError, OSError, TimeoutError) as exc:
        raise CliError(f"cannot reach Temporal at {settings.temporal_address} ({type(exc).__name__}); "
                       "is the stack running? (`make demo` or `make run`)") from None
    try:
        handle = await (trigger_schedule(client) if args.province is None
                        else start_for_province(client, settings.task_queue, args.province))
    except SchedulePlanMissing as exc:
        raise CliError(str(exc)) from None
    started = {"workflow_id": handle.id, "run_id": handle.run_id}
    if not args.wait:
        print_json(started) if args.json else print(f"plan started: workflow {handle.id}")
        return EXIT_OK
    try:
        outcome = await asyncio.wait_for(handle.result(), timeout=args.timeout)
    except TimeoutError:
        raise CliError(f"plan {handle.id} not finished after {args.timeout:.0f}s (is the worker running?); "
                       "see it in the Temporal UI") from None
    except WorkflowFailureError as exc:
        raise CliError(f"plan {handle.id} failed: {exc.cause}") from None
    if args.json:
        print_json({**started, **outcome.model_dump(mode="json")})
        return EXIT_OK
    print(f"school capacity plan {outcome.first_entry_year}-{outcome.first_entry_year + outcome.years - 1} "
          f"(workflow {handle.id})")
    print(f"reports: {outcome.report_dir}")
    print(f"index:   {outcome.index}")
    for province, (html_path, *_) in outcome.reports.items():
        short = outcome.short_wards.get(province, 0)
        told = " — education department notified" if province in outcome.notified_provinces else ""
        print(f"  {province} {rules.province_name(province):<24} {short:>3} ward(s) short{told}  {html_path}")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "load-schools": cmd_load_schools, "plan-schools": cmd_plan_schools,
}
