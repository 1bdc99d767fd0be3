"""The Alembic migrations produce exactly the schema the models describe."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from registry.models import Base

pytestmark = pytest.mark.integration


async def test_migrations_match_the_models(service: Any) -> None:
    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with service.registry.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == [], f"models and migrations differ; add a migration: {differences}"
