"""Engine, sessions and the unit of work around one database transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, cast

from sqlalchemy import Table, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

_KEEP_LOADED = "lifeevents.keep_loaded"


@event.listens_for(Session, "loaded_as_persistent")
def _keep_loaded(session: Session, instance: Any) -> None:
    """Inside `one_transaction()`: hold every row loaded, so the next step's `session.get` finds it (the identity
    map alone holds them weakly: a row the step before let go would be read again)."""
    kept = session.info.get(_KEEP_LOADED)
    if kept is not None:
        kept.append(instance)


_TRANSACTION_MEMOS = "lifeevents.transaction_memos"


def table_of(model: type[Any]) -> Table:
    """The mapped class's table, for Core INSERTs: an ORM-enabled INSERT of one row pays for bulk-persistence
    bookkeeping that costs more than the statement, and nothing needs the inserted row as an object."""
    return cast(Table, model.__table__)


def transaction_memo(session: AsyncSession, name: str) -> dict[Any, Any]:
    """A dict that lives as long as the session's transaction: what a step read that the next step of the same
    transaction (`Registry.one_transaction`) would read again."""
    memos: dict[str, dict[Any, Any]] = session.info.setdefault(_TRANSACTION_MEMOS, {})
    return memos.setdefault(name, {})


@event.listens_for(Session, "after_transaction_end")
def _forget_transaction_memos(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_TRANSACTION_MEMOS, None)


def make_engine(database_url: str, *, pool_size: int = 10, connect_timeout: float | None = None) -> AsyncEngine:
    """`connect_timeout`: seconds to wait for a new connection (asyncpg's default is 60; the CLI waits less).

    No pre-ping: it cost three round trips (BEGIN, `SELECT 1`, ROLLBACK) at every checkout. A connection that
    died while pooled (PostgreSQL restarted) fails its first statement instead; SQLAlchemy then discards it and
    every connection pooled before it, and the step fails and is retried on a fresh connection (an agency step by
    Temporal, an event by the bridge's redelivery). Every step is one idempotent transaction, so the retry repeats
    nothing that took effect."""
    connect_args = {"timeout": connect_timeout} if connect_timeout else {}
    return create_async_engine(database_url, pool_size=pool_size, max_overflow=10, pool_pre_ping=False,
                               connect_args=connect_args)


class Registry:
    """Hands out units of work: `async with registry.unit_of_work() as session: ...` commits on success.

    Inside `one_transaction()`, every unit of work of the same task joins that one transaction instead (it
    commits, or rolls back, once at the end): two agencies' steps that must take effect together, e.g. a stage
    and the family's notice about it, run as one transaction without either agency knowing of the other.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._joined: ContextVar[AsyncSession | None] = ContextVar(f"joined-{id(self)}", default=None)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        joined = self._joined.get()
        if joined is not None:
            yield joined
            return
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def one_transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction for every unit of work opened in the block (by this task and the tasks it starts)."""
        if self._joined.get() is not None:
            raise RuntimeError("one_transaction() does not nest")
        async with self._sessions() as session, session.begin():
            token = self._joined.set(session)
            session.info[_KEEP_LOADED] = []
            try:
                yield session
            finally:
                self._joined.reset(token)
                session.info.pop(_KEEP_LOADED, None)

    async def between_steps(self) -> None:
        """Inside `one_transaction()`: write what the step before changed, so the next one's queries see it.

        The loaded rows are kept: every change a step makes goes through this session, as ORM attribute changes or
        ORM-enabled UPDATEs (which SQLAlchemy applies to the loaded objects too, `synchronize_session="auto"`), so
        they are as current as the database, and the next step's `session.get` of the same row costs no query."""
        session = self._joined.get()
        if session is not None:
            await session.flush()

    async def close(self) -> None:
        await self.engine.dispose()
