"""The bridge from NATS to Temporal: durable pull consumers on the civil and health streams, one event path.

For each message: decode once (structured or binary content mode, :mod:`events.content_modes`), read the
CloudEvent ``type`` and hand the event to that type's handler, which validates it and stores it / starts or
signals a workflow. Invalid (including a type with no handler, or a subject that disagrees with the payload) →
dead-letter stream with the original bytes, the event's own headers and the reasons, then `term`; valid →
handled, then `ack`; registry or Temporal unavailable → `nak` with a growing delay, so it comes back later and
nothing is lost. At most `concurrency` messages are in flight across both streams;
`stop` lets those finish before returning (SIGTERM drain).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from opentelemetry.trace import SpanKind, Status, StatusCode

from events.content_modes import ATTRIBUTE_HEADER_PREFIX, message_document
from events.envelope import CloudEvent, InvalidEvent, _echo, _reason, envelope_reasons
from events.poison import (  # noqa: F401 - the header names: where readers of dead letters look for them
    ORIGINAL_SEQUENCE_HEADER,
    ORIGINAL_SUBJECT_HEADER,
    REASON_HEADER,
    consumer_config,
    consumer_gone,
    dead_letter,
    gave_up_reason,
    subscribe_durable,
    unreadable_reason,
)
from events.streams import CIVIL_SUBJECTS, DLQ_PREFIX, HEALTH_SUBJECTS
from infra import metrics
from infra.settings import Settings
from infra.telemetry import context_from, tracer
from rules.producers import producer_source, source_province

log = logging.getLogger("lifeevents.bridge")

FETCH_TIMEOUT = 0.5


class Payload(Protocol):
    @property
    def province_code(self) -> str: ...


class EventHandler(Protocol):
    """What the bridge does with one event type; `handle` raises InvalidEvent to dead-letter the event."""

    event_type: str
    subject_domain: str
    """First subject token (``civil``, ``health``)."""
    subject_event: str
    """Last subject token (``birth_registered``)."""

    def parse(self, document: Mapping[str, Any]) -> tuple[CloudEvent, Payload]: ...

    async def handle(self, event: CloudEvent, payload: Any, subject: str) -> None: ...


def backoff_seconds(delivery_count: int, maximum: float) -> float:
    return float(min(maximum, 0.5 * 2 ** max(0, delivery_count - 1)))


@dataclass(frozen=True)
class Consumer:
    stream: str
    subjects: str
    durable: str


def consumers(settings: Settings) -> list[Consumer]:
    return [Consumer(settings.civil_stream, CIVIL_SUBJECTS, settings.bridge_civil_durable),
            Consumer(settings.health_stream, HEALTH_SUBJECTS, settings.bridge_health_durable)]


def _event_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The headers that are part of a binary-mode event (its attributes and content type), kept in a dead letter."""
    return {name: value for name, value in (headers or {}).items()
            if name.lower().startswith(ATTRIBUTE_HEADER_PREFIX) or name.lower() == "content-type"}


class EventBridge:
    def __init__(self, js: JetStreamContext, handlers: Iterable[EventHandler], settings: Settings) -> None:
        self.js = js
        self.handlers: dict[str, EventHandler] = {}
        for handler in handlers:
            if handler.event_type in self.handlers:
                raise ValueError(f"two handlers for event type {handler.event_type!r}")
            self.handlers[handler.event_type] = handler
        self.settings = settings
        self.processed = 0
        self.dead_lettered = 0
        self.retried = 0
        self._slots = asyncio.Semaphore(settings.bridge_concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        subs: dict[Consumer, Any] = {}
        try:
            for c in consumers(s):
                subs[c] = await subscribe_durable(self.js, c.stream, consumer_config(s, c.durable, c.subjects))
            log.info("bridge consuming %s (concurrency %d, event types: %s)",
                     ", ".join(f"{c.stream} as {c.durable}" for c in consumers(s)), s.bridge_concurrency,
                     ", ".join(sorted(self.handlers)))
            # Each consumer may hold all slots but one while it waits for messages, so no stream is starved.
            most = max(1, s.bridge_concurrency - (len(subs) - 1))
            await asyncio.gather(*(self._consume(c, subs, stop, most) for c in subs))
        finally:
            if self._in_flight:
                log.info("draining %d in-flight event(s)", len(self._in_flight))
                await asyncio.gather(*self._in_flight, return_exceptions=True)
            for sub in subs.values():
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _consume(self, c: Consumer, subs: dict[Consumer, Any], stop: asyncio.Event, most: int) -> None:
        """Fetch and hand out messages of one consumer until `stop`. A consumer deleted under the bridge (by an
        operator, or lost by the server) is created again and consumption goes on; when that fails (its stream
        is gone too) the error ends the bridge, and `worker.py` exits non-zero for its supervisor."""
        while not stop.is_set():
            sub = subs[c]
            try:
                async with asyncio.timeout(FETCH_TIMEOUT):
                    await self._slots.acquire()
            except TimeoutError:
                continue
            taken = 1
            while taken < most and not self._slots.locked():
                await self._slots.acquire()
                taken += 1
            msgs: list[Msg] = []
            try:
                msgs = await sub.fetch(batch=taken, timeout=FETCH_TIMEOUT)
            except (TimeoutError, NatsTimeoutError):
                pass
            except Exception as exc:  # connection trouble: the client reconnects by itself
                log.warning("fetch failed (%s); retrying", type(exc).__name__)
                if await consumer_gone(self.js, c.stream, c.durable):
                    log.warning("consumer %s on %s no longer exists: creating it again", c.durable, c.stream)
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
                    subs[c] = await subscribe_durable(self.js, c.stream,
                                                      consumer_config(self.settings, c.durable, c.subjects))
                else:
                    await asyncio.sleep(FETCH_TIMEOUT)
            finally:
                for _ in range(taken - len(msgs)):
                    self._slots.release()
            for msg in msgs:
                task = asyncio.create_task(self.handle(msg))
                self._in_flight.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("event handling failed outside its guard (%s); the message will be redelivered",
                      type(exc).__name__, exc_info=exc)

    async def handle(self, msg: Msg) -> None:
        """One event, which always ends acked, nak'ed (to come back later) or dead-lettered and termed."""
        try:
            await self._traced(msg)
        except Exception as exc:
            deliveries = (msg.metadata.num_delivered if msg.metadata else None) or 1
            log.error("event handling failed (%s); redelivery later (delivery %d)", type(exc).__name__, deliveries)
            self.retried += 1
            await msg.nak(delay=backoff_seconds(deliveries, self.settings.bridge_max_backoff_seconds))

    async def _traced(self, msg: Msg) -> None:
        """One event in a CONSUMER span that continues the publisher's trace (the event's `traceparent`), so the
        workflow started or signalled inside it belongs to the same trace."""
        document = _structured_attributes(msg.data)
        event_type = metrics.event_type_label(document.get("type"), self.handlers)
        metrics.EVENTS_RECEIVED.labels(event_type).inc()
        with tracer().start_as_current_span(
                f"process {event_type}", context=context_from(document, msg.headers), kind=SpanKind.CONSUMER,
                attributes={"messaging.system": "nats", "messaging.destination.name": msg.subject,
                            "cloudevents.event_type": event_type}) as span:
            outcome = await self._handle(msg)
            span.set_attribute("lifeevents.outcome", outcome)
            if outcome == "dead-lettered":
                span.set_status(Status(StatusCode.ERROR, "dead-lettered"))
        {"processed": metrics.EVENTS_PROCESSED, "dead-lettered": metrics.EVENTS_DEAD_LETTERED,
         "retried": metrics.EVENTS_RETRIED}[outcome].labels(event_type).inc()

    async def _handle(self, msg: Msg) -> str:
        try:
            handler, event, payload = self.validate(msg)
        except InvalidEvent as invalid:
            return await self._dead_letter(msg, invalid)
        except Exception as exc:  # noqa: BLE001 - any failure to read an event is a reason, never a lost task
            return await self._dead_letter(msg, unreadable_reason(exc))
        try:
            await handler.handle(event, payload, msg.subject)
        except InvalidEvent as invalid:  # e.g. the registry has no such citizen
            return await self._dead_letter(msg, invalid)
        except Exception as exc:
            deliveries = msg.metadata.num_delivered or 1
            if deliveries >= self.settings.bridge_max_deliver:
                return await self._dead_letter(msg, gave_up_reason(deliveries, exc))
            delay = backoff_seconds(deliveries, self.settings.bridge_max_backoff_seconds)
            log.warning("event %s not processed (%s: %s); redelivery in %.1fs (delivery %d)",
                        event.id, type(exc).__name__, str(exc)[:200], delay, deliveries)
            self.retried += 1
            await msg.nak(delay=delay)
            return "retried"
        await msg.ack()
        self.processed += 1
        return "processed"

    def validate(self, msg: Msg) -> tuple[EventHandler, CloudEvent, Any]:
        """The event's handler, envelope and typed payload; InvalidEvent with every reason otherwise."""
        document = message_document(msg.headers, msg.data)
        event_type = document.get("type")
        handler = self.handlers.get(event_type) if isinstance(event_type, str) else None
        if handler is None:
            _, reasons = envelope_reasons(document)
            if isinstance(event_type, str) and event_type:
                reasons.append(_reason("envelope.type", f"no handler for event type {_echo(event_type)}"))
            raise InvalidEvent(reasons or [_reason("envelope.type", "is required")])
        event, payload = handler.parse(document)
        tokens = msg.subject.split(".")
        if len(tokens) != 3:
            raise InvalidEvent(_reason("subject", f"{msg.subject} is not <domain>.<province>.<event>"))
        domain, province, last = tokens
        reasons = []
        if province != payload.province_code:
            reasons.append(_reason("subject", f"province '{province}' in subject {msg.subject} differs from "
                                              f"data.province_code '{payload.province_code}'"))
        expected = f"{handler.subject_domain}.<province>.{handler.subject_event}"
        if (domain, last) != (handler.subject_domain, handler.subject_event):
            reasons.append(_reason("subject", f"{msg.subject} is not a subject for {handler.event_type} events "
                                              f"(expected {expected})"))
        elif source_province(domain, event.source) != province:
            # the server let only this province's producer publish here; the event must name the same producer
            reasons.append(_reason("envelope.source", f"{_echo(event.source)} is not a producer of province "
                                                      f"'{province}' of the subject (expected "
                                                      f"{producer_source(domain, province)}[:<office>])"))
        if reasons:
            raise InvalidEvent(reasons)
        return handler, event, payload

    async def _dead_letter(self, msg: Msg, invalid: InvalidEvent) -> str:
        deliveries = (msg.metadata.num_delivered if msg.metadata else None) or 1
        if await dead_letter(self.js, msg, str(invalid), subject=_dead_letter_subject(msg.subject),
                             dlq_stream=self.settings.dlq_stream, extra_headers=_event_headers(msg.headers),
                             retry_delay=backoff_seconds(deliveries, self.settings.bridge_max_backoff_seconds)):
            self.dead_lettered += 1
            return "dead-lettered"
        self.retried += 1
        return "retried"


def _dead_letter_subject(subject: str) -> str:
    """`dlq.<subject>`, or `dlq.unreadable.subject` for a subject whose bytes were not UTF-8 (the client shows
    them escaped; the original subject header keeps that escaped form)."""
    if "\\" in subject or not subject.isprintable() or " " in subject:
        return f"{DLQ_PREFIX}.unreadable.subject"
    return f"{DLQ_PREFIX}.{subject}"


def _structured_attributes(data: bytes) -> dict[str, Any]:
    """The top-level attributes of a structured-mode JSON CloudEvent, for the trace context and the metrics
    label before validation; empty when the bytes are not a JSON object (validation says why)."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return {}
    return document if isinstance(document, dict) else {}
