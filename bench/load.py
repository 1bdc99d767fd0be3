"""Synthetic births in, notices counted out: the load the benchmark drives and how it sees progress."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from cli.publishing import publish_raw
from events.models import encode_event, make_birth_event
from infra.settings import Settings
from registry.db import Registry
from registry.models import BirthRegistration, NoticeDispatch, Notification
from registry.seed import family, synthetic_birth
from workflows.contracts import BIRTH_STAGES

SEED_FAMILIES = 500
POLL_SECONDS = 0.5
"""How often the benchmark counts notices: one cheap query a poll, so the poller stays out of the figures."""


@dataclass(frozen=True)
class Batch:
    """`count` births with registration numbers `<prefix>0000001`…; each phase of a run has its own prefix."""

    prefix: str
    count: int

    def number(self, i: int) -> str:
        return f"{self.prefix}{i:07d}"

    def events(self) -> list[bytes]:
        born = date.today() - timedelta(days=4)
        return [encode_event(make_birth_event(synthetic_birth(
            family(i % SEED_FAMILIES), registration_number=self.number(i), date_of_birth=born,
            sex="male" if i % 2 else "female"))) for i in range(self.count)]

    @property
    def expected_notices(self) -> int:
        return self.count * len(BIRTH_STAGES)


async def notices_pushed(registry: Registry, batch: Batch) -> int:
    """Notices of this batch's births (dedupe key `birth-<province>-<number>/<stage>`) stored and pushed to the
    family's apps by the notice dispatcher: the end of the fan-out as the family sees it."""
    async with registry.unit_of_work() as session:
        return int(await session.scalar(
            select(func.count()).select_from(Notification)
            .join(NoticeDispatch, NoticeDispatch.notification_id == Notification.id)
            .where(Notification.dedupe_key.like(f"birth-%-{batch.prefix}%"))) or 0)


async def wait_until_notified(registry: Registry, batch: Batch, *, limit_seconds: float) -> tuple[float, float]:
    """Poll until every birth of the batch has all its notices pushed, or the limit passes: the monotonic time when
    polling stopped and the share of the batch's notices pushed by then (1.0: all)."""
    deadline = time.monotonic() + limit_seconds
    while (sent := await notices_pushed(registry, batch)) < batch.expected_notices:
        if time.monotonic() > deadline:
            return time.monotonic(), sent / batch.expected_notices
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic(), 1.0


async def publish_paced(settings: Settings, batch: Batch, rate: float) -> dict[str, datetime]:
    """Publish the batch one birth every 1/rate seconds; when each publish began (wall clock, UTC).

    Each publish opens its own connection (`publish_raw`, with the province's credentials), so the time from
    "publish began" to a notice includes that connection: the latencies err on the long side.
    """
    raw = batch.events()
    began: dict[str, datetime] = {}
    start = time.monotonic()
    for i, event in enumerate(raw):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        began[batch.number(i)] = datetime.now(UTC)
        await publish_raw(settings, [event], progress=False)
    return began


async def notice_times(registry: Registry, batch: Batch) -> dict[str, tuple[datetime, datetime]]:
    """Per registration number: when its first and its last notice was written."""
    async with registry.unit_of_work() as session:
        rows = (await session.execute(
            select(BirthRegistration.registration_number, func.min(Notification.created_at),
                   func.max(Notification.created_at))
            .join(Notification, Notification.citizen_person_id == BirthRegistration.child_person_id)
            .where(BirthRegistration.registration_number.like(f"{batch.prefix}%"))
            .group_by(BirthRegistration.registration_number))).all()
    return {number: (first, last) for number, first, last in rows}
