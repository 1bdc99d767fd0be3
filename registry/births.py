"""Storing what the civil-status office sent: idempotent by event id and by registration number."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.dialects.postgresql import insert

from registry.db import Registry
from registry.models import BirthRegistration, ReceivedEvent

if TYPE_CHECKING:  # the event modules import this one (their bridge handlers store through it)
    from events.birth_registered import BirthRegistered
    from events.envelope import CloudEvent


async def store_birth_registration(registry: Registry, event: CloudEvent, payload: BirthRegistered,
                                   subject: str) -> bool:
    """Keep the registration; True when it is new. The same registration under another event id is kept once."""
    async with registry.unit_of_work() as session:
        await session.execute(
            insert(ReceivedEvent)
            .values(event_id=event.id, event_type=event.type, registration_number=payload.registration_number,
                    subject=subject)
            .on_conflict_do_nothing())
        result = await session.execute(
            insert(BirthRegistration)
            .values(registration_number=payload.registration_number, event_id=event.id,
                    registered_at=payload.registered_at, office_code=payload.office_code,
                    province_code=payload.province_code, payload=payload.model_dump(mode="json"))
            .on_conflict_do_nothing(index_elements=["registration_number"]))
        return bool(result.rowcount)  # type: ignore[attr-defined]
