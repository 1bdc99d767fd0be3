"""Command line of the life-event service (`python starter.py --help`): the entry point. Each command group
lives in its own module under `cli/`; this file parses the arguments and runs the command.

Every command takes `--json` where it prints something a program may read, and exits non-zero on error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from cli import ledger as ledger_commands
from cli import lifecycle as lifecycle_commands
from cli import schools as school_commands
from cli.common import EXIT_CODES_HELP, EXIT_UNREACHABLE, CliError
from cli.operator import (
    cmd_dlq,
    cmd_inbox,
    cmd_retry_failed,
    cmd_status,
    cmd_supply_household,
    format_notice,
    format_status,
    load_inbox,
    load_status,
)
from cli.publishing import cmd_publish, cmd_simulate_births, publish_raw
from cli.repair import cmd_dlq_replay, cmd_retry_all
from cli.setup import cmd_migrate, cmd_seed_population
from infra.process import exit_now
from infra.redaction import install_redaction
from infra.settings import Settings
from infra.telemetry import configure_tracing


# ---- repairs -----------------------------------------------------------------------------------------------
async def cmd_dlq_or_replay(settings: Settings, args: argparse.Namespace) -> int:
    return await (cmd_dlq_replay if args.action == "replay" else cmd_dlq)(settings, args)


async def cmd_retry_one_or_all(settings: Settings, args: argparse.Namespace) -> int:
    if args.all:
        if args.registration_number:
            raise CliError("REGISTRATION_NO: give one registration or --all, not both")
        return await cmd_retry_all(settings, args)
    if not args.registration_number:
        raise CliError("REGISTRATION_NO: say which birth to retry, or --all")
    return await cmd_retry_failed(settings, args)


# ---- demo --------------------------------------------------------------------------------------------------
async def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from demo import run_demo

    return await run_demo(settings, publish_raw=publish_raw, load_status=load_status, load_inbox=load_inbox,
                          format_status=format_status, format_notice=format_notice, wait_seconds=args.timeout)


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "migrate": cmd_migrate, "seed-population": cmd_seed_population, "publish": cmd_publish,
    "simulate-births": cmd_simulate_births, "status": cmd_status, "inbox": cmd_inbox, "dlq": cmd_dlq_or_replay,
    "supply-household": cmd_supply_household, "retry-failed": cmd_retry_one_or_all, "demo": cmd_demo,
    **lifecycle_commands.COMMANDS, **school_commands.COMMANDS, **ledger_commands.COMMANDS,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="starter.py", description=__doc__, epilog=EXIT_CODES_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    add("migrate", "apply the database migrations")
    add("seed-population", "create a synthetic population of parents and households").add_argument(
        "count", type=int, metavar="N", help="number of households (each with a mother and a father)")
    p = add("publish", "publish the CloudEvent(s) in FILE (an object or an array) to NATS, each as the producer of "
                       "its province")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--office", metavar="CODE", help="province whose office publishes events that name no province")
    p = add("simulate-births", "publish N valid synthetic births")
    p.add_argument("count", type=int, metavar="N")
    p.add_argument("--province", metavar="CODE", help="province code, e.g. 079")
    province_help = "province code, when the number is registered in more than one province"
    p = add("status", "each stage of a birth with state and time, the ID number, card, residence, plan")
    p.add_argument("registration_number", metavar="REGISTRATION_NO")
    p.add_argument("--province", metavar="CODE", help=province_help)
    add("inbox", "the family's notices, oldest first").add_argument("id_number", metavar="ID_NUMBER")
    p = add("dlq", "dead-lettered events with their reasons; `dlq replay SEQUENCE [--file FIXED.json]` publishes one "
                   "again once its cause is fixed")
    p.add_argument("action", nargs="?", choices=["list", "replay"], default="list")
    p.add_argument("sequence", nargs="?", type=int, metavar="SEQUENCE", help="the dead letter's number (dlq lists it)")
    p.add_argument("--file", metavar="FIXED.json", help="replay this corrected event instead of the stored bytes")
    p = add("supply-household", "operator: register a waiting child in a household (needs-attention repair)")
    p.add_argument("registration_number", metavar="REGISTRATION_NO")
    p.add_argument("household_number", metavar="HOUSEHOLD_NUMBER")
    p.add_argument("--province", metavar="CODE", help=province_help)
    p = add("retry-failed", "operator: run again the steps of a birth whose agency gave up (or of every such birth "
                            "with --all)")
    p.add_argument("registration_number", nargs="?", metavar="REGISTRATION_NO")
    p.add_argument("--province", metavar="CODE", help=province_help + "; with --all, only this province")
    p.add_argument("--all", action="store_true", help="every birth that waits for an operator")
    p.add_argument("--reason", metavar="R", help="with --all, only births with this AttentionReason")
    add("demo", "publish the sample births and print what the state did").add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for the stages (default 180)")
    lifecycle_commands.add_commands(add)
    school_commands.add_commands(add)
    ledger_commands.add_commands(add)
    return parser


def is_unreachable(exc: BaseException) -> bool:
    """A connection that failed below our own checks (the database, most often)."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, (OSError, TimeoutError, OperationalError, InterfaceError)):
        return True
    name = type(exc).__name__
    return "Connect" in name or "NoServers" in name or "RPCError" in name


def report_error(message: str, code: int, *, as_json: bool) -> int:
    """One line on stderr (`error: …`), or with --json one JSON object on stdout."""
    if as_json:
        print(json.dumps({"error": message, "exit_code": code}, ensure_ascii=False))
    else:
        print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    install_redaction()
    args = build_parser().parse_args(argv)
    settings = Settings()
    tracing = configure_tracing(settings, "lifeevents-cli")
    try:
        return asyncio.run(COMMANDS[args.command](settings, args))
    except CliError as exc:
        return report_error(str(exc), exc.code, as_json=getattr(args, "json", False))
    except Exception as exc:
        if not is_unreachable(exc):
            raise
        return report_error(f"cannot reach a server ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); is "
                            "the stack running? (`make demo` or `make run`)", EXIT_UNREACHABLE,
                            as_json=getattr(args, "json", False))
    finally:
        if tracing is not None:
            tracing.shutdown()  # the publish spans are exported before the process ends


if __name__ == "__main__":
    exit_now(main())


__all__ = ["main", "publish_raw"]
