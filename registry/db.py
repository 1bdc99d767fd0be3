"""Engine, sessions and the unit of work around one database transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


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
            try:
                yield session
            finally:
                self._joined.reset(token)

    async def between_steps(self) -> None:
        """Inside `one_transaction()`: write what the first step changed and forget the loaded rows, so the next
        step reads them as they now are (a bulk UPDATE leaves an object already loaded as it was)."""
        session = self._joined.get()
        if session is not None:
            await session.flush()
            session.expire_all()

    async def close(self) -> None:
        await self.engine.dispose()
