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
from dataclasses import dataclass
from typing import Protocol

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from events.poison import consumer_config, consumer_gone, dead_letter, subscribe_durable
from events.streams import DLQ_PREFIX, NOTIFY_PREFIX
from infra.metrics import NOTICE_DISPATCHES
from infra.settings import Settings
from registry.db import Registry
from registry.models import InboxMessage, NoticeDispatch, Notification

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
    """Where a notice is pushed to its recipients (inside the dispatch's transaction); returns how many."""

    async def push(self, session: AsyncSession, notice: Notification) -> int: ...


class InboxPushChannel:
    """The built-in channel: the citizen app reads its inbox; a push marks each recipient's message as pushed."""

    async def push(self, session: AsyncSession, notice: Notification) -> int:
        result = await session.execute(update(InboxMessage).where(InboxMessage.notification_id == notice.id,
                                                                  InboxMessage.pushed_at.is_(None))
                                       .values(pushed_at=func.now()))
        return int(getattr(result, "rowcount", 0) or 0)


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
                for msg in msgs:
                    await self.handle(msg)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def handle(self, msg: Msg) -> str:
        """One announcement, which always ends acked, nak'ed or dead-lettered; returns the outcome."""
        meta = msg.metadata
        deliveries = (meta.num_delivered if meta else None) or 1
        try:
            announcement = read_announcement(msg.data, meta.sequence.stream if meta and meta.sequence else 0)
            outcome = await self.dispatch(announcement)
        except UnreadableAnnouncement as unreadable:
            outcome = await self._dead_letter(msg, str(unreadable))
        except Exception as exc:  # noqa: BLE001 - the registry down, the notice not committed yet: later
            if deliveries >= self.settings.bridge_max_deliver:
                why = "not in the registry" if isinstance(exc, NoticeNotStored) else type(exc).__name__
                outcome = await self._dead_letter(msg, f"notification_id: gave up after {deliveries} deliveries "
                                                       f"({why})")
            else:
                await msg.nak(delay=min(self.settings.bridge_max_backoff_seconds, 0.5 * 2 ** (deliveries - 1)))
                outcome = "retried"
        else:
            await msg.ack()
        NOTICE_DISPATCHES.labels(outcome).inc()
        return outcome

    async def dispatch(self, announcement: Announcement) -> str:
        """Push the notice unless it was pushed before: "pushed" or "repeat"."""
        async with self.registry.unit_of_work() as session:
            notice = await session.get(Notification, announcement.notification_id)
            if notice is None:
                raise NoticeNotStored(str(announcement.notification_id))
            first = await session.scalar(
                insert(NoticeDispatch)
                .values(notification_id=notice.id, stream_sequence=announcement.stream_sequence, recipients=0)
                .on_conflict_do_nothing(index_elements=["notification_id"])
                .returning(NoticeDispatch.notification_id))
            if first is None:
                await session.execute(update(NoticeDispatch).where(NoticeDispatch.notification_id == notice.id)
                                      .values(repeats_seen=NoticeDispatch.repeats_seen + 1))
                return "repeat"
            pushed = await self.channel.push(session, notice)
            await session.execute(update(NoticeDispatch).where(NoticeDispatch.notification_id == notice.id)
                                  .values(recipients=pushed))
        return "pushed"

    async def _dead_letter(self, msg: Msg, reason: str) -> str:
        stored = await dead_letter(self.js, msg, reason, subject=f"{DLQ_PREFIX}.{msg.subject}",
                                   dlq_stream=self.settings.dlq_stream,
                                   retry_delay=self.settings.bridge_max_backoff_seconds)
        return "dead-lettered" if stored else "retried"
