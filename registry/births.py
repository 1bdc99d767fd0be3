"""Storing what the civil-status office sent.

Keys that hold for many offices and many events:

- an event is the CloudEvent (source, id): two offices may use the same ids, and both events count;
- a birth registration is its province and registration number (numbers repeat across provinces); its workflow
  is ``birth-<province>-<number>``, stored with the row (rows from before keep ``birth-<number>``).

The same registration sent again with the same data (any event id or source) changes nothing. Sent again with
*different* data it is a conflict: :class:`InvalidEvent` (the bridge dead-letters it with the reason), and the
first registration stays as it was. Changes to a registration travel as a correction event, not as a re-send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from events.reasons import InvalidEvent, _reason
from registry.db import Registry, table_of, transaction_memo
from registry.models import BirthRegistration, ReceivedEvent

_PARENT_MATCH = "parent_match"

if TYPE_CHECKING:  # the event modules import this one (their bridge handlers store through it)
    from events.birth_registered import BirthRegistered
    from events.envelope import CloudEvent

log = logging.getLogger("lifeevents.registry")

CONFLICT_REASON: Final = _reason("data.registration_number",
                                  "conflict: registration already recorded with different data")
"""Why a re-sent registration with other data is dead-lettered (no personal value in it)."""


def birth_workflow_id(province_code: str, registration_number: str) -> str:
    """Business key of a birth registered from migration 0004 on: one workflow per (province, number)."""
    return f"birth-{province_code}-{registration_number}"


def legacy_birth_workflow_id(registration_number: str) -> str:
    """The workflow id of a birth received before migration 0004 (kept in its registration row)."""
    return f"birth-{registration_number}"


@dataclass(frozen=True)
class StoredBirth:
    workflow_id: str
    new: bool


def canonical_payload(data: dict[str, Any]) -> dict[str, Any]:
    """The payload as compared: JSON values, ``registered_at`` as an instant (the offset it is written in may
    differ between two sends of the same registration)."""
    out = dict(data)
    at = out.get("registered_at")
    if isinstance(at, str):
        try:
            out["registered_at"] = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return out


async def store_birth_registration(registry: Registry, event: CloudEvent, payload: BirthRegistered,
                                   subject: str) -> StoredBirth:
    """Keep the registration (once per province and number) and the event (once per source and id).

    :class:`InvalidEvent` when the registration is already on record with different data.
    """
    data = payload.model_dump(mode="json")
    workflow_id = birth_workflow_id(payload.province_code, payload.registration_number)
    async with registry.unit_of_work() as session:
        inserted = await session.scalar(
            insert(table_of(BirthRegistration))
            .values(registration_number=payload.registration_number, event_id=event.id, event_source=event.source,
                    workflow_id=workflow_id, registered_at=payload.registered_at, office_code=payload.office_code,
                    province_code=payload.province_code, payload=data)
            .on_conflict_do_nothing(index_elements=["province_code", "registration_number"])
            .returning(BirthRegistration.workflow_id))
        if inserted is None:
            existing = await _existing(session, payload.province_code, payload.registration_number)
            if canonical_payload(existing.payload) != canonical_payload(data):
                log.warning("registration conflict: province %s number %s already recorded with different data "
                            "(event from %s not applied)", payload.province_code, payload.registration_number,
                            event.source)
                raise InvalidEvent(CONFLICT_REASON)  # the transaction rolls back: nothing of this event is kept
            workflow_id = existing.workflow_id
        await session.execute(
            insert(table_of(ReceivedEvent))
            .values(event_source=event.source, event_id=event.id, event_type=event.type,
                    registration_number=payload.registration_number, subject=subject)
            .on_conflict_do_nothing())
        return StoredBirth(workflow_id=workflow_id, new=inserted is not None)


async def _existing(session: AsyncSession, province_code: str, registration_number: str) -> BirthRegistration:
    row = await session.scalar(select(BirthRegistration).where(
        BirthRegistration.province_code == province_code,
        BirthRegistration.registration_number == registration_number))
    assert row is not None  # the insert conflicted on this key, and rows are never deleted
    return row


async def registrations_numbered(session: AsyncSession, registration_number: str,
                                 province_code: str | None = None) -> list[BirthRegistration]:
    """The birth registrations with this number (one per province), optionally in one province."""
    query = select(BirthRegistration).where(BirthRegistration.registration_number == registration_number)
    if province_code:
        query = query.where(BirthRegistration.province_code == province_code)
    return list((await session.scalars(query.order_by(BirthRegistration.province_code))).all())


def remember_parent_match(session: AsyncSession, reg: BirthRegistration) -> None:
    """`record_birth` has the row in hand: the residence stage of the same transaction need not read it again."""
    transaction_memo(session, _PARENT_MATCH)[reg.child_person_id] = reg.parent_match


async def parent_match_of(session: AsyncSession, child_person_id: Any) -> dict[str, str] | None:
    """What `record_birth` found for the child's parents (codes per role), if the child came from a registration."""
    known = transaction_memo(session, _PARENT_MATCH)
    if child_person_id in known:
        return known[child_person_id]  # type: ignore[no-any-return]
    found: dict[str, str] | None = await session.scalar(
        select(BirthRegistration.parent_match).where(BirthRegistration.child_person_id == child_person_id))
    return found
