"""The bridge from NATS to Temporal: a durable pull consumer on the civil-events stream.

For each message: invalid → dead-letter stream with the original bytes and the reason, then `term`;
valid → keep it in the registry, start the workflow under a business-key id, then `ack`;
registry or Temporal unavailable → `nak` with a growing delay, so it comes back later and nothing is lost.
At most `concurrency` messages are in flight; `stop` lets those finish before returning (SIGTERM drain).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from events.models import BIRTH_SUBJECT_EVENT, BirthRegistered, CloudEvent, InvalidEvent, parse_birth_event
from events.streams import DLQ_PREFIX
from infra.settings import Settings
from registry.births import store_birth_registration
from registry.db import Registry
from workflows.contracts import BirthCase

log = logging.getLogger("lifeevents.bridge")

REASON_HEADER = "Dead-Letter-Reason"
ORIGINAL_SUBJECT_HEADER = "Original-Subject"
ORIGINAL_SEQUENCE_HEADER = "Original-Stream-Sequence"


class WorkflowStarter(Protocol):
    async def start_birth(self, case: BirthCase) -> None:
        """Start the birth workflow; a second start for the same registration must be a no-op."""


def backoff_seconds(delivery_count: int, maximum: float) -> float:
    return float(min(maximum, 0.5 * 2 ** max(0, delivery_count - 1)))


class BirthEventBridge:
    def __init__(self, js: JetStreamContext, registry: Registry, starter: WorkflowStarter, settings: Settings) -> None:
        self.js = js
        self.registry = registry
        self.starter = starter
        self.settings = settings
        self.processed = 0
        self.dead_lettered = 0
        self.retried = 0

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        sub = await self.js.pull_subscribe(
            f"civil.*.{BIRTH_SUBJECT_EVENT}", durable=s.bridge_durable, stream=s.civil_stream,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                                  ack_wait=60.0, max_deliver=-1, max_ack_pending=s.bridge_concurrency * 4))
        in_flight: set[asyncio.Task[None]] = set()
        log.info("bridge consuming %s (durable %s, concurrency %d)", s.civil_stream, s.bridge_durable,
                 s.bridge_concurrency)
        try:
            while not stop.is_set():
                free = s.bridge_concurrency - len(in_flight)
                if free <= 0:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    msgs = await sub.fetch(batch=free, timeout=0.5)
                except (TimeoutError, NatsTimeoutError):
                    continue
                except Exception as exc:  # connection trouble: the client reconnects by itself
                    log.warning("fetch failed (%s); retrying", type(exc).__name__)
                    await asyncio.sleep(0.5)
                    continue
                for msg in msgs:
                    task = asyncio.create_task(self.handle(msg))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
        finally:
            if in_flight:
                log.info("draining %d in-flight event(s)", len(in_flight))
                await asyncio.gather(*in_flight, return_exceptions=True)
            await sub.unsubscribe()

    async def handle(self, msg: Msg) -> None:
        try:
            event, payload = self.validate(msg)
        except InvalidEvent as invalid:
            await self._dead_letter(msg, invalid)
            return
        try:
            await store_birth_registration(self.registry, event, payload, msg.subject)
            await self.starter.start_birth(BirthCase(registration_number=payload.registration_number,
                                                     province_code=payload.province_code))
        except Exception as exc:
            deliveries = msg.metadata.num_delivered or 1
            delay = backoff_seconds(deliveries, self.settings.bridge_max_backoff_seconds)
            log.warning("event %s not processed (%s: %s); redelivery in %.1fs (delivery %d)",
                        event.id, type(exc).__name__, str(exc)[:200], delay, deliveries)
            self.retried += 1
            await msg.nak(delay=delay)
            return
        await msg.ack()
        self.processed += 1

    def validate(self, msg: Msg) -> tuple[CloudEvent, BirthRegistered]:
        event, payload = parse_birth_event(msg.data)
        subject_province = msg.subject.split(".")[1] if msg.subject.count(".") >= 2 else None
        if subject_province != payload.province_code:
            raise InvalidEvent([f"subject: province '{subject_province}' in subject {msg.subject} differs from "
                                f"data.province_code '{payload.province_code}'"])
        return event, payload

    async def _dead_letter(self, msg: Msg, invalid: InvalidEvent) -> None:
        seq = msg.metadata.sequence.stream if msg.metadata and msg.metadata.sequence else 0
        headers = {
            REASON_HEADER: str(invalid)[:4000],
            ORIGINAL_SUBJECT_HEADER: msg.subject,
            ORIGINAL_SEQUENCE_HEADER: str(seq),
            "Nats-Msg-Id": f"dlq-{self.settings.civil_stream}-{seq}",
        }
        try:
            await self.js.publish(f"{DLQ_PREFIX}.{msg.subject}", msg.data, headers=headers,
                                  stream=self.settings.dlq_stream)
        except Exception as exc:
            log.warning("dead-letter publish failed (%s); event kept for redelivery", type(exc).__name__)
            await msg.nak(delay=backoff_seconds(msg.metadata.num_delivered or 1,
                                                self.settings.bridge_max_backoff_seconds))
            return
        log.warning("dead-lettered stream seq %d on %s: %s", seq, msg.subject, invalid)
        await msg.term()
        self.dead_lettered += 1
