"""Engine, sessions and the unit of work around one database transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
    """Hands out units of work: `async with registry.unit_of_work() as session: ...` commits on success."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        await self.engine.dispose()
