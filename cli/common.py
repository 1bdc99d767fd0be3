"""What every CLI command shares: exit codes, the error type, JSON output, connections that never hang.

Exit codes (the same in every command; `starter.py --help` lists them):

    0  done
    1  the request is wrong: bad input, a file that cannot be read, nothing to do
    2  usage: an unknown command or option (argparse)
    3  not found: no such registration, citizen, household, dead letter
    4  a server cannot be reached (NATS, Temporal, PostgreSQL) within the connect time-out
    5  refused: the workflow or the server declined the operation (e.g. nothing waits to be retried)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from infra.settings import Settings
from registry.db import Registry, make_engine

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_UNREACHABLE, EXIT_REFUSED = 0, 1, 2, 3, 4, 5
EXIT_CODES_HELP = """exit codes: 0 done; 1 bad request or input; 2 usage; 3 not found; 4 a server (NATS, Temporal,
PostgreSQL) unreachable; 5 refused by the workflow or server. With --json, an error is printed on stdout as
{"error": "...", "exit_code": N}."""
READER = "operator-cli"
CONNECT_TIMEOUT = 5.0
"""Seconds a CLI command waits for a server before it gives up with exit code 4."""


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


class ServerUnreachable(CliError):
    def __init__(self, server: str, address: str, reason: str) -> None:
        super().__init__(f"cannot reach {server} at {address} ({reason}); is the stack running? "
                         "(`make demo` or `make run`; `make status` shows it)", EXIT_UNREACHABLE)


def registry_for(settings: Settings) -> Registry:
    return Registry(make_engine(settings.database_url, pool_size=5, connect_timeout=CONNECT_TIMEOUT))


async def log_unmatched_read(settings: Settings, *, fields: str, purpose: str) -> None:
    """Record an operator's read of raw events never matched to a citizen (the dead letters: they may hold anyone's
    personal data): a ledger entry with no citizen, naming what was read and why."""
    from activities.common import log_access

    registry = registry_for(settings)
    try:
        async with registry.unit_of_work() as session:
            log_access(session, citizen=None, agency=READER, workflow_id=None, fields=fields, purpose=purpose)
    finally:
        await registry.close()


async def cli_nats(settings: Settings, identity: str, errors: list[str] | None = None, **options: Any) -> Any:
    """A NATS connection for a CLI command: one attempt within the time-out, no reconnecting, and the client's
    own error reports collected (into `errors`, e.g. a server's refusal) instead of printed."""
    from infra.nats_identities import NatsCredentialsMissing
    from worker import connect_nats

    errors = [] if errors is None else errors

    async def collect(exc: Exception) -> None:
        errors.append(str(exc) or type(exc).__name__)

    opts: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT, "allow_reconnect": False,
                            "max_reconnect_attempts": 0, "error_cb": collect, **options}
    seen = len(errors)
    connecting = asyncio.ensure_future(connect_nats(settings, identity, **opts))
    deadline = asyncio.get_running_loop().time() + CONNECT_TIMEOUT
    # nats-py keeps trying a refused server until its own time-out; the first error it reports is answer enough
    while not connecting.done() and len(errors) == seen and asyncio.get_running_loop().time() < deadline:
        await asyncio.wait({connecting}, timeout=0.05)
    if not connecting.done():
        connecting.cancel()
        with contextlib.suppress(BaseException):
            await connecting
        why = errors[-1] if len(errors) > seen else "no answer in time"
        raise ServerUnreachable("NATS", settings.nats_url, _short(why))
    try:
        return connecting.result()
    except NatsCredentialsMissing as exc:
        raise CliError(str(exc)) from exc
    except Exception as exc:  # refused, no servers, authorization: all "cannot reach"
        reason = errors[-1] if len(errors) > seen else (str(exc) or type(exc).__name__)
        raise ServerUnreachable("NATS", settings.nats_url, _short(reason)) from exc


async def cli_temporal(settings: Settings) -> Any:
    """The Temporal client for a CLI command, or exit code 4 within the time-out."""
    from worker import connect_temporal

    try:
        return await asyncio.wait_for(connect_temporal(settings), timeout=CONNECT_TIMEOUT)
    except Exception as exc:
        raise ServerUnreachable("Temporal", settings.temporal_address,
                                _short(str(exc) or type(exc).__name__)) from exc


def _short(reason: str) -> str:
    return " ".join(reason.split())[:200]


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def require_id_number(value: str) -> None:
    """A well-formed personal ID number, or a CLI error naming the argument (never echoing the number)."""
    import rules

    problem = rules.personal_id_problem(value)
    if problem:
        raise CliError(f"ID_NUMBER: {problem}")
