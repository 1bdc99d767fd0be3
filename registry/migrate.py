"""Apply the Alembic migrations programmatically (used by `make demo`, the worker and the tests)."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config

from infra.settings import PROJECT_ROOT


def alembic_config(database_url: str, app_role: str | None = None) -> Config:
    """`database_url` is the schema owner's connection; `app_role`, the service's role, is granted what it
    needs on the tables (migration 0009)."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if app_role:
        cfg.set_main_option("app_role", app_role)
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade(database_url: str, app_role: str | None = None) -> None:
    command.upgrade(alembic_config(database_url, app_role), "head")


async def upgrade_async(database_url: str, app_role: str | None = None) -> None:
    """env.py runs its own event loop, so from async code it runs in a thread."""
    await asyncio.to_thread(upgrade, database_url, app_role)
