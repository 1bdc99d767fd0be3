"""Small helpers the agency modules share."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import DataAccess


def log_access(session: AsyncSession, *, citizen: uuid.UUID, agency: str, purpose: str,
               workflow_id: str | None) -> None:
    """Record one read of a citizen's personal data (Data-Tracker style: who, why, for which workflow)."""
    session.add(DataAccess(citizen_person_id=citizen, agency=agency, purpose=purpose, workflow_id=workflow_id))
