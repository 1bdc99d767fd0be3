"""The notice dispatcher: each notice announced on NOTIFY is pushed to its recipients' apps once per notification id.

The notification agency announces a notice (`notify.inbox.<citizen>`, a reference: the notification id) inside
the transaction that stores it, and a retry whose commit was lost announces it again under the same id
(`activities.notification.notification_id_for`). JetStream drops a repeat only inside its duplicate window; this
consumer drops it whatever the window: one transaction records the dispatch under the notification id (primary
key) and pushes through the channel, so a repeated announcement finds the row, counts as `repeats_seen` and pushes
nothing. The built-in channel marks the recipients' inbox messages as pushed in that same transaction (the app
reads its inbox); a channel outside the registry (SMS, a push service) receives the notification id as its
idempotency key, because a crash between its send and the commit sends again on redelivery.

An announcement that is not a readable reference is dead-lettered on `dlq.<subject>` with its reason; one naming a
notice not (yet) in the registry (its transaction has not committed, or never will) is redelivered with a growing
delay and dead-lettered after `BRIDGE_MAX_DELIVER` deliveries. Every message ends acked, nak'ed or dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from sqlalchemy import BigInteger, Integer, Uuid, any_, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from events.poison import consumer_config, consumer_gone, dead_letter, subscribe_durable
from events.streams import DLQ_PREFIX, NOTIFY_PREFIX
from infra.metrics import NOTICE_DISPATCHES
from infra.settings import Settings
from registry.db import Registry
from registry.models import InboxMessage, NoticeDispatch

log = logging.getLogger("lifeevents.notice_dispatch")

INBOX_SUBJECTS = f"{NOTIFY_PREFIX}.inbox.>"
FETCH_BATCH = 16
FETCH_TIMEOUT = 0.5


class UnreadableAnnouncement(ValueError):
    """The message is not a notice reference; the text is the reason, naming the field."""


@dataclass(frozen=True)
class Announcement:
    notification_id: uuid.UUID
    stream_sequence: int


def read_announcement(data: bytes, stream_sequence: int) -> Announcement:
    """The notification id an announcement refers to; UnreadableAnnouncement naming the field otherwise."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise UnreadableAnnouncement(f"body: not JSON ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise UnreadableAnnouncement("body: not a JSON object")
    raw = document.get("notification_id")
    if not isinstance(raw, str):
        raise UnreadableAnnouncement("notification_id: missing or not a string")
    try:
        return Announcement(uuid.UUID(raw), stream_sequence)
    except ValueError:
        raise UnreadableAnnouncement("notification_id: not a UUID") from None


class PushChannel(Protocol):
    """Where notices are pushed to their recipients (inside the dispatch's transaction), by notification id (the
    channel reads what it sends from the registry); returns how many recipients each was pushed to."""

    async def push(self, session: AsyncSession, notices: list[uuid.UUID]) -> dict[uuid.UUID, int]: ...


_MARK_PUSHED = (update(InboxMessage)
                .where(InboxMessage.notification_id == any_(bindparam("ids", type_=ARRAY(Uuid()))),
                       InboxMessage.pushed_at.is_(None))
                .values(pushed_at=func.now()).returning(InboxMessage.notification_id)
                .execution_options(synchronize_session=False))


class InboxPushChannel:
    """The built-in channel: the citizen app reads its inbox; a push marks each recipient's message as pushed."""

    async def push(self, session: AsyncSession, notices: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        counts = dict.fromkeys(notices, 0)
        for notification_id in await session.scalars(_MARK_PUSHED, {"ids": notices}):
            counts[notification_id] += 1
        return counts


_CLAIM = text("""
INSERT INTO notice_dispatches (notification_id, stream_sequence, recipients)
SELECT n.id, a.seq, 0 FROM unnest(CAST(:ids AS uuid[]), CAST(:seqs AS bigint[])) AS a(id, seq)
JOIN notifications n ON n.id = a.id
ON CONFLICT (notification_id) DO NOTHING
RETURNING notification_id
""").bindparams(bindparam("ids", type_=ARRAY(Uuid())), bindparam("seqs", type_=ARRAY(BigInteger())))
"""Claims each announced notice that is stored and not dispatched before, in one statement."""
_DISPATCHED = select(NoticeDispatch.notification_id).where(
    NoticeDispatch.notification_id == any_(bindparam("ids", type_=ARRAY(Uuid()))))
_REPEATS_SEEN = text("""
UPDATE notice_dispatches d SET repeats_seen = d.repeats_seen + r.n
FROM unnest(CAST(:ids AS uuid[]), CAST(:counts AS integer[])) AS r(id, n) WHERE d.notification_id = r.id
""").bindparams(bindparam("ids", type_=ARRAY(Uuid())), bindparam("counts", type_=ARRAY(Integer())))
_RECIPIENTS = text("""
UPDATE notice_dispatches d SET recipients = p.n
FROM unnest(CAST(:ids AS uuid[]), CAST(:counts AS integer[])) AS p(id, n) WHERE d.notification_id = p.id
""").bindparams(bindparam("ids", type_=ARRAY(Uuid())), bindparam("counts", type_=ARRAY(Integer())))


class NoticeNotStored(RuntimeError):
    """The announced notice is not in the registry (yet): redeliver later."""


class NoticeDispatcher:
    def __init__(self, js: JetStreamContext, registry: Registry, settings: Settings,
                 channel: PushChannel | None = None) -> None:
        self.js, self.registry, self.settings = js, registry, settings
        self.channel = channel or InboxPushChannel()

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        config = consumer_config(s, s.notice_dispatch_durable, INBOX_SUBJECTS)
        sub = await subscribe_durable(self.js, s.notify_stream, config)
        log.info("notice dispatcher consuming %s as %s", s.notify_stream, s.notice_dispatch_durable)
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(batch=FETCH_BATCH, timeout=FETCH_TIMEOUT)
                except (TimeoutError, NatsTimeoutError):
                    continue
                except Exception as exc:  # connection trouble: the client reconnects by itself
                    log.warning("fetch failed (%s); retrying", type(exc).__name__)
                    if await consumer_gone(self.js, s.notify_stream, s.notice_dispatch_durable):
                        log.warning("consumer %s no longer exists: creating it again", s.notice_dispatch_durable)
                        with contextlib.suppress(Exception):
                            await sub.unsubscribe()
                        sub = await subscribe_durable(self.js, s.notify_stream, config)  # fails if NOTIFY is gone
                    else:
                        await asyncio.sleep(FETCH_TIMEOUT)
                    continue
                await self.handle_batch(msgs)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def handle(self, msg: Msg) -> str:
        """One announcement, which always ends acked, nak'ed or dead-lettered; returns the outcome."""
        return (await self.handle_batch([msg]))[0]

    async def handle_batch(self, msgs: list[Msg]) -> list[str]:
        """The announcements of one fetch, dispatched in one transaction; each ends acked, nak'ed or
        dead-lettered. Returns each one's outcome, in order."""
        outcomes: list[str | None] = [None] * len(msgs)
        readable: dict[int, Announcement] = {}
        for i, msg in enumerate(msgs):
            meta = msg.metadata
            try:
                readable[i] = read_announcement(msg.data, meta.sequence.stream if meta and meta.sequence else 0)
            except UnreadableAnnouncement as unreadable:
                outcomes[i] = await self._dead_letter(msg, str(unreadable))
        failure: Exception | None = None
        dispatched: dict[uuid.UUID, str] = {}
        if readable:
            try:
                dispatched = await self.dispatch_all(list(readable.values()))
            except Exception as exc:  # noqa: BLE001 - the registry down: every announcement comes back later
                failure = exc
        seen: set[uuid.UUID] = set()
        for i, announcement in readable.items():
            outcome = None if failure else dispatched.get(announcement.notification_id)
            if outcome is not None and announcement.notification_id in seen:
                outcome = "repeat"  # announced twice in one fetch: pushed once
            seen.add(announcement.notification_id)
            if outcome is None:
                outcomes[i] = await self._later(msgs[i], failure or NoticeNotStored(str(announcement.notification_id)))
            else:
                await msgs[i].ack()
                outcomes[i] = outcome
        for outcome in outcomes:
            NOTICE_DISPATCHES.labels(outcome).inc()
        return [o or "retried" for o in outcomes]

    async def _later(self, msg: Msg, exc: Exception) -> str:
        """The notice is not committed yet, or the registry is down: redeliver with a growing delay, and
        dead-letter once `BRIDGE_MAX_DELIVER` deliveries have failed."""
        deliveries = (msg.metadata.num_delivered if msg.metadata else None) or 1
        if deliveries >= self.settings.bridge_max_deliver:
            why = "not in the registry" if isinstance(exc, NoticeNotStored) else type(exc).__name__
            return await self._dead_letter(msg, f"notification_id: gave up after {deliveries} deliveries ({why})")
        await msg.nak(delay=min(self.settings.bridge_max_backoff_seconds, 0.5 * 2 ** (deliveries - 1)))
        return "retried"

    async def dispatch(self, announcement: Announcement) -> str:
        """Push the notice unless it was pushed before: "pushed" or "repeat"; NoticeNotStored if it is not in
        the registry (yet)."""
        outcome = (await self.dispatch_all([announcement])).get(announcement.notification_id)
        if outcome is None:
            raise NoticeNotStored(str(announcement.notification_id))
        return outcome

    async def dispatch_all(self, announcements: list[Announcement]) -> dict[uuid.UUID, str]:
        """Push every announced notice not pushed before, in one transaction: "pushed" or "repeat" per
        notification id; a notice not in the registry (yet) is left out."""
        first: dict[uuid.UUID, int] = {}
        announced = Counter(a.notification_id for a in announcements)
        for a in announcements:
            first.setdefault(a.notification_id, a.stream_sequence)
        ids = list(first)
        async with self.registry.unit_of_work() as session:
            claimed = list(await session.scalars(_CLAIM, {"ids": ids, "seqs": list(first.values())}))
            outcomes = dict.fromkeys(claimed, "pushed")
            rest = [i for i in ids if i not in outcomes]
            outcomes.update(dict.fromkeys(await session.scalars(_DISPATCHED, {"ids": rest}) if rest else [],
                                          "repeat"))
            # every announcement after a notice's first dispatch is a repeat, in this fetch or a later one
            seen_again = {i: announced[i] - (outcome == "pushed") for i, outcome in outcomes.items()}
            if any(seen_again.values()):
                again = [i for i, n in seen_again.items() if n]
                await session.execute(_REPEATS_SEEN, {"ids": again, "counts": [seen_again[i] for i in again]})
            if claimed:
                pushed = await self.channel.push(session, claimed)
                await session.execute(_RECIPIENTS, {"ids": claimed, "counts": [pushed.get(i, 0) for i in claimed]})
        return outcomes

    async def _dead_letter(self, msg: Msg, reason: str) -> str:
        stored = await dead_letter(self.js, msg, reason, subject=f"{DLQ_PREFIX}.{msg.subject}",
                                   dlq_stream=self.settings.dlq_stream,
                                   retry_delay=self.settings.bridge_max_backoff_seconds)
        return "dead-lettered" if stored else "retried"
