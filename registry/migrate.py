"""Apply the Alembic migrations programmatically (used by `make demo`, the worker and the tests)."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config

from infra.settings import PROJECT_ROOT


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url)
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


async def upgrade_async(database_url: str) -> None:
    """env.py runs its own event loop, so from async code it runs in a thread."""
    await asyncio.to_thread(upgrade, database_url)
