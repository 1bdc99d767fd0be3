"""Small helpers the agency modules share."""

from __future__ import annotations

import logging
import time
import typing
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

import rules
from infra.metrics import LEDGER_WRITES, STEP_DURATION
from registry.db import table_of, transaction_memo
from registry.models import BirthRegistration, DataAccess, Person

T = TypeVar("T")
log = logging.getLogger("lifeevents.activities")


async def require_child(session: AsyncSession, person_id: uuid.UUID) -> Person:
    """The child's person record, which `record_birth` created; its absence is a bug, not a retryable state."""
    child = await session.get(Person, person_id)
    if child is None:
        raise ApplicationError("child person record missing", type="PersonMissing", non_retryable=True)
    return child


_REGISTERED_AT = select(BirthRegistration.registered_at).where(BirthRegistration.child_person_id == bindparam("person"))


_RECORDED_NOW = "recorded now"
_REGISTERED_ON = "registered on"
WRITTEN_CARD = "card written"
WRITTEN_PLAN = "plan written"
WRITTEN_FORECAST = "forecast written"
"""Transaction memos (`transaction_memo`) of what a stage wrote, by person: the notice that follows the stage in the
same transaction tells the family from them instead of reading the rows back."""


def recorded_in_this_transaction(session: AsyncSession, person_id: uuid.UUID) -> bool:
    """The person's row was created by this transaction (`record_birth` of `Registry.one_transaction`): no step
    can have run for them before, and no other transaction can see them yet, so a stage's "done already?" read
    would find nothing and is skipped."""
    return person_id in transaction_memo(session, _RECORDED_NOW)


def remember_recorded_now(session: AsyncSession, person_id: uuid.UUID) -> None:
    transaction_memo(session, _RECORDED_NOW)[person_id] = True


def remember_registered_on(session: AsyncSession, person_id: uuid.UUID, registered_at: datetime | None) -> None:
    """`record_birth` has the registration row in hand: the later stages of its transaction need not read it."""
    transaction_memo(session, _REGISTERED_ON)[person_id] = rules.local_date(
        registered_at if registered_at is not None else datetime.now(UTC))


async def registered_on(session: AsyncSession, person_id: uuid.UUID) -> date:
    """The local date the citizen's birth was registered: every agency decides from the age on that day.

    A citizen registered before this system (no registration row) is treated as registered today. Read once per
    transaction: the stages of a birth that share one ask it four times.
    """
    known: dict[uuid.UUID, date] = transaction_memo(session, _REGISTERED_ON)
    if person_id not in known:
        remember_registered_on(session, person_id, await session.scalar(_REGISTERED_AT, {"person": person_id}))
    return known[person_id]


"""`fields` of a read whose call site does not name the fields it reads: the person record as a whole."""
_PENDING_ACCESS = "lifeevents.pending_data_access"
_WRITTEN_ACCESS = "lifeevents.written_data_access"


def log_access(session: AsyncSession, *, citizen: uuid.UUID | None, agency: str, purpose: str,
               workflow_id: str | None, fields: str) -> None:
    """Record one read of personal data in the ledger (who, which fields, why, for which workflow).

    The entry is written when the session commits, in the same transaction as the step's effect (a rolled-back
    step leaves none), with ON CONFLICT DO NOTHING: an entry with a workflow id is unique per (workflow, reader,
    purpose, citizen), so a retried activity adds no second entry. The hash chain is set by the database trigger.
    """
    pending: list[dict[str, Any]] = session.sync_session.info.setdefault(_PENDING_ACCESS, [])
    pending.append({"citizen_person_id": citizen, "agency": agency, "purpose": purpose, "workflow_id": workflow_id,
                    "fields": fields})


_INSERT_LEDGER_ENTRIES = pg_insert(table_of(DataAccess)).on_conflict_do_nothing(
    index_elements=["workflow_id", "agency", "purpose", "citizen_person_id"],
    index_where=DataAccess.workflow_id.is_not(None)).returning(DataAccess.agency)
"""Every entry of a transaction in one statement: the chain trigger fires row by row in the statement's order,
and each row's trigger sees the rows before it (PostgreSQL's rule for row-level BEFORE triggers), so each entry
still takes its own place in the chain."""


@event.listens_for(Session, "before_commit")
def _write_access_ledger(session: Session) -> None:
    """The ledger entries go last: each takes the ledger's advisory lock (held to the commit), so the step's own
    changes are flushed first. A step that took the ledger lock and then waited for a row another step holds
    while that one waits for the ledger lock would deadlock (a residence update against a notice's FOR SHARE)."""
    pending = session.info.pop(_PENDING_ACCESS, None)
    if not pending:
        return
    session.flush()
    result = session.connection().execute(_INSERT_LEDGER_ENTRIES, pending)
    session.info.setdefault(_WRITTEN_ACCESS, []).extend(result.scalars().all())


@event.listens_for(Session, "after_commit")
def _count_access_ledger(session: Session) -> None:
    for agency in session.info.pop(_WRITTEN_ACCESS, ()):
        LEDGER_WRITES.labels(agency).inc()


@event.listens_for(Session, "after_rollback")
def _forget_access_ledger(session: Session) -> None:
    session.info.pop(_PENDING_ACCESS, None)
    session.info.pop(_WRITTEN_ACCESS, None)


async def run_step(agency: str, step: Awaitable[T]) -> T:
    """Run an agency step so that a failure carries no personal data into workflow history.

    Temporal records an activity's failure message in history. Our own `ApplicationError`s are written
    without personal data; anything else (a database error can quote the row it choked on) is replaced by
    its type name, and the details stay in the worker's log of the exception type only.
    """
    try:
        return await step
    except ApplicationError:
        raise
    except Exception as exc:  # noqa: BLE001 - every other failure is re-raised in a PII-free form
        kind = type(exc).__name__
        log.warning("%s step failed with %s", agency, kind)
        raise ApplicationError(f"{agency} step failed ({kind})", type=kind) from None


async def timed(name: str, step: Awaitable[T]) -> T:
    """`step`, its duration observed in the stage-duration metric under `name` with its outcome."""
    started, outcome = time.perf_counter(), "failed"
    try:
        result = await step
        outcome = "done"
        return result
    finally:
        STEP_DURATION.labels(name, outcome).observe(time.perf_counter() - started)


def agency_activity(name: str, agency: str, step: Callable[[Any], Awaitable[Any]]) -> Callable[..., Any]:
    """Expose one agency port method as the Temporal activity `name`.

    The activity keeps the method's parameter and return types (the pydantic data converter reads them) and
    runs it through `run_step`, so a replacement agency implementation is plugged in by passing its method.
    """
    hints = typing.get_type_hints(step)
    (param, arg_type), = ((k, v) for k, v in hints.items() if k != "return")

    async def run(inp: Any) -> Any:
        return await timed(name, run_step(agency, step(inp)))

    run.__name__ = run.__qualname__ = name
    run.__annotations__ = {"inp": arg_type, "return": hints["return"]}
    return activity.defn(name=name)(run)
