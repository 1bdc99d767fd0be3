"""The data-access ledger: `verify-ledger` (an auditor recomputes the hash chain) and `data-usage` (a citizen
sees every access to their data). The chain is written by the trigger of migration 0008; this module recomputes
it in Python from the stored fields, independently of the database's function."""

from __future__ import annotations

import argparse
import hashlib
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cli.common import (
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_OK,
    READER,
    CliError,
    print_json,
    registry_for,
    require_id_number,
)
from infra.settings import Settings
from registry.models import DataAccess, Person

GENESIS = "0" * 64
PAGE = 5000


def canonical(seq: int, citizen: uuid.UUID | None, agency: str, fields: str | None, purpose: str,
              workflow_id: str | None, accessed_at: datetime) -> str:
    """The entry as the trigger hashes it: fields joined by U+001F, NULL as '', the time in UTC with microseconds."""
    at = accessed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return "\x1f".join([str(seq), str(citizen) if citizen else "", agency, fields or "", purpose, workflow_id or "",
                        at])


def entry_hash(prev_hash: str, row: Any) -> str:
    text = prev_hash + canonical(row.seq, row.citizen_person_id, row.agency, row.fields, row.purpose,
                                 row.workflow_id, row.accessed_at)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class LedgerCheck:
    intact: bool
    entries: int
    broken_seq: int | None = None
    broken_id: int | None = None
    reason: str | None = None


async def verify_ledger(session: AsyncSession, *, page: int = PAGE) -> LedgerCheck:
    """Recompute the chain in `seq` order, `page` entries at a time; the first broken entry and why."""
    columns = (DataAccess.id, DataAccess.seq, DataAccess.citizen_person_id, DataAccess.agency, DataAccess.fields,
               DataAccess.purpose, DataAccess.workflow_id, DataAccess.accessed_at, DataAccess.prev_hash,
               DataAccess.hash)
    last_seq, last_hash, count = 0, GENESIS, 0
    while True:
        rows = (await session.execute(select(*columns).where(DataAccess.seq > last_seq)
                                      .order_by(DataAccess.seq).limit(page))).all()
        if not rows:
            return LedgerCheck(intact=True, entries=count)
        for row in rows:
            reason = None
            if row.seq != last_seq + 1:
                reason = (f"gap in seq: entries {last_seq + 1}..{row.seq - 1} are missing (deleted)"
                          if row.seq > last_seq + 1 else f"seq {row.seq} out of order")
            elif row.prev_hash != last_hash:
                reason = "prev_hash mismatch: does not match the previous entry's hash"
            elif entry_hash(row.prev_hash, row) != row.hash:
                reason = "hash mismatch: the entry was altered after it was written"
            if reason is not None:
                return LedgerCheck(intact=False, entries=count, broken_seq=row.seq, broken_id=row.id, reason=reason)
            last_seq, last_hash, count = row.seq, row.hash, count + 1


async def cmd_verify_ledger(settings: Settings, args: argparse.Namespace) -> int:
    registry = registry_for(settings)
    try:
        async with registry.unit_of_work() as session:
            check = await verify_ledger(session)
    finally:
        await registry.close()
    if args.json:
        print_json(asdict(check))
    elif check.intact:
        print(f"ledger intact: {check.entries} entries, hash chain verified")
    else:
        print(f"ledger BROKEN at seq {check.broken_seq} (id {check.broken_id}): {check.reason}\n"
              f"   {check.entries} entries before it verified")
    return EXIT_OK if check.intact else EXIT_ERROR


async def data_usage(session: AsyncSession, id_number: str, *, reader: str) -> list[dict[str, Any]] | None:
    """Every access to the citizen's data, newest first (this read is itself logged); None for no such citizen."""
    from activities.common import log_access

    person_id = await session.scalar(select(Person.id).where(Person.personal_id_number == id_number))
    if person_id is None:
        return None
    log_access(session, citizen=person_id, agency=reader, purpose="show the citizen's data usage", workflow_id=None,
               fields="data_access_log")
    rows = (await session.scalars(select(DataAccess).where(DataAccess.citizen_person_id == person_id)
                                  .order_by(DataAccess.accessed_at.desc(), DataAccess.seq.desc()))).all()
    return [{"at": r.accessed_at.isoformat(), "reader": r.agency, "fields": r.fields, "purpose": r.purpose,
             "workflow_id": r.workflow_id, "seq": r.seq} for r in rows]


async def cmd_data_usage(settings: Settings, args: argparse.Namespace) -> int:
    require_id_number(args.id_number)
    registry = registry_for(settings)
    try:
        async with registry.unit_of_work() as session:
            entries = await data_usage(session, args.id_number, reader=READER)
    finally:
        await registry.close()
    if entries is None:
        raise CliError("ID_NUMBER: no citizen with this personal ID number", EXIT_NOT_FOUND)
    if args.json:
        print_json(entries)
    elif not entries:
        print("no recorded access to this citizen's data")
    else:
        for e in entries:
            print(f"[{e['at'][:19]}] {e['reader']}: {e['purpose']}\n   fields: {e['fields'] or '-'}"
                  + (f"   workflow: {e['workflow_id']}" if e["workflow_id"] else ""))
    return EXIT_OK


def add_commands(add: Any) -> None:
    """Register this group's sub-commands (`add(name, help)` returns the sub-parser)."""
    add("verify-ledger", "recompute the data-access ledger's hash chain; name the first broken entry (exit 1)")
    add("data-usage", "every access to a citizen's data, newest first: when, who, which fields, why").add_argument(
        "id_number", metavar="ID_NUMBER")


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "verify-ledger": cmd_verify_ledger, "data-usage": cmd_data_usage,
}
