"""Publishing civil-status and health events as their producers would: `publish` and `simulate-births`."""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import string
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from opentelemetry.trace import SpanKind
from tqdm import tqdm

from cli.common import EXIT_OK, EXIT_REFUSED, CliError, cli_nats, print_json, registry_for
from events.models import encode_event, make_birth_event
from events.reasons import _echo
from infra.settings import Settings
from infra.telemetry import TRACE_ATTRIBUTES, context_from, current_trace_headers, tracer, with_trace_context


# ---- publishing --------------------------------------------------------------------------------------------
def nats_msg_id(source: str, event_id: str) -> str:
    """`Nats-Msg-Id` of a CloudEvent: CloudEvents makes only source + id unique, so both go in — the first 32 hex
    digits of SHA-256(source NUL id). Two offices using the same ids are two events; a re-send is one."""
    return hashlib.sha256(f"{source}\0{event_id}".encode()).hexdigest()[:32]


def _subject_and_id(raw_event: Any, raw: bytes, office: str | None = None) -> tuple[str, str, str]:
    """Subject by the event's type and province (an unknown type gets a subject where it is dead-lettered), the
    event id, and the message id (from source + id; from the bytes when either is missing). An event that names
    no province goes on the subject of `office`, the province publishing it, when one is given."""
    from events.streams import subject_for

    province = office or "unknown"
    event_id = msg_id = hashlib.sha256(raw).hexdigest()
    event_type = None
    if isinstance(raw_event, dict):
        event_type = raw_event.get("type")
        data = raw_event.get("data")
        if isinstance(data, dict) and isinstance(data.get("province_code"), str) and data["province_code"].isalnum():
            province = data["province_code"]
        if isinstance(raw_event.get("id"), str) and raw_event["id"]:
            event_id = raw_event["id"]
            if isinstance(raw_event.get("source"), str) and raw_event["source"]:
                msg_id = nats_msg_id(raw_event["source"], event_id)
    return subject_for(event_type, province), event_id, msg_id


def with_trace_attributes(raw: bytes, event: dict[str, Any]) -> bytes:
    """The event's bytes with the current trace context as its first attributes.

    The producer's bytes are kept as written (the dead-letter stream shows them as they were sent); only an event
    that brought its own trace context is re-encoded, with that context replaced."""
    headers = current_trace_headers()
    if not headers:
        return raw
    if any(name in event for name in TRACE_ATTRIBUTES):
        with_trace_context(event)
        return json.dumps(event, ensure_ascii=False).encode()
    members = ", ".join(f"{json.dumps(name)}: {json.dumps(value)}" for name, value in headers.items())
    opening = raw.index(b"{") + 1
    return raw[:opening] + members.encode() + (b", " if event else b"") + raw[opening:]


def publisher_identity(subject: str) -> str:
    """The producer identity allowed to publish on `subject` (`civil.079.…` → the civil-status office of 079)."""
    import rules
    from rules.producers import producer_identity, producer_kinds

    domain, _, rest = subject.partition(".")
    province = rest.partition(".")[0]
    if domain not in producer_kinds():
        raise CliError(f"subject {subject}: no producer publishes on it")
    if not rules.is_known_province(province):
        raise CliError(f"subject {subject}: the event names no known province (data.province_code), so no office "
                       "may publish it; say which office publishes it with --office CODE")
    return producer_identity(domain, province)


class _Publishers:
    """One connection per producer identity, opened when first needed; the server's refusals are collected so a
    refused publish is reported with the server's reason instead of a bare time-out."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connections: dict[str, Any] = {}
        self.refusals: list[str] = []

    async def for_subject(self, subject: str) -> Any:
        identity = publisher_identity(subject)
        if identity not in self.connections:
            self.connections[identity] = await cli_nats(self.settings, identity, errors=self.refusals,
                                                        name=f"publisher-{identity}")
        return self.connections[identity].jetstream()

    @property
    def max_payload(self) -> int:
        return int(next(iter(self.connections.values())).max_payload)

    async def close(self) -> None:
        for nc in self.connections.values():
            await nc.drain()


async def publish_raw(settings: Settings, events: list[bytes], *, progress: bool = True,
                      office: str | None = None) -> list[dict[str, Any]]:
    """Publish as the civil-status offices or health stations would: each event with the credentials of the
    producer of its province (a producer can publish only on its own province's subjects), subject by type and
    province, `Nats-Msg-Id` from the CloudEvent source + id (:func:`nats_msg_id`).

    Each event is published inside a PRODUCER span `publish <type>`, the root of that event's trace (or a child of
    the `traceparent` the event already carries), whose context is written into the event as the CloudEvents
    distributed-tracing extension (`traceparent`, `tracestate`: :func:`with_trace_attributes`). Bytes that are not
    a JSON object go out as they are."""
    from nats.errors import NoRespondersError
    from nats.errors import TimeoutError as NatsTimeoutError

    from events.streams import stream_for

    publishers = _Publishers(settings)
    results = []
    try:
        checked = False
        for raw in tqdm(events, unit="event", desc="publishing", disable=not progress or len(events) < 5):
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            subject, event_id, msg_id = _subject_and_id(parsed, raw, office)
            js = await publishers.for_subject(subject)
            if not checked:  # every connection goes to the same server: one max_payload
                refuse_oversized(events, publishers.max_payload)
                checked = True
            event_type = parsed.get("type") if isinstance(parsed, dict) else None
            with tracer().start_as_current_span(
                    f"publish {event_type if isinstance(event_type, str) else 'event'}", kind=SpanKind.PRODUCER,
                    context=context_from(parsed) if isinstance(parsed, dict) else None,
                    attributes={"messaging.system": "nats", "messaging.destination.name": subject}):
                if isinstance(parsed, dict):
                    raw = with_trace_attributes(raw, parsed)
                try:
                    ack = await js.publish(subject, raw, headers={"Nats-Msg-Id": msg_id},
                                           stream=stream_for(settings, subject))
                except (TimeoutError, NatsTimeoutError) as exc:
                    why = publishers.refusals[-1] if publishers.refusals else "no acknowledgement from the stream"
                    raise CliError(f"event {event_id}: not published on {subject}: {why}") from exc
                except NoRespondersError as exc:
                    raise CliError(f"event {event_id}: not published on {subject}: no stream holds it yet; the "
                                   "service creates the streams when it starts (`make run`, `python worker.py`)",
                                   EXIT_REFUSED) from exc
            results.append({"event_id": event_id, "subject": subject, "stream_sequence": ack.seq,
                            "duplicate": bool(ack.duplicate)})
    finally:
        await publishers.close()
    return results


HEADER_ROOM = 1024
"""Bytes kept free for the message headers (Nats-Msg-Id, trace context…): the server's max_payload counts them."""


def refuse_oversized(events: list[bytes], max_payload: int) -> None:
    """CliError naming every event the server would refuse for its size, before any is published: all or none
    go out, so the file can be fixed and published again as a whole."""
    limit = max_payload - HEADER_ROOM
    lines = []
    for number, raw in enumerate(events, start=1):
        if len(raw) > limit:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            _, event_id, _ = _subject_and_id(parsed, raw)
            lines.append(f"event #{number} of {len(events)} (id {_echo(event_id)}) is {len(raw):,} bytes; the server "
                         f"takes at most {limit:,} bytes per event (max_payload {max_payload:,} less {HEADER_ROOM:,} "
                         "for headers)")
    if lines:
        raise CliError("\n".join(lines) + "; nothing was published")


def _events_from_file(path: Path) -> list[bytes]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"FILE: cannot read {path}: {exc.strerror}") from exc
    if not text.strip():
        raise CliError(f"FILE: {path} holds no events")
    try:
        content = json.loads(text)
    except ValueError:
        return [text.encode()]  # published as is: the bridge dead-letters it with the reason
    items = content if isinstance(content, list) else [content]
    if not items:
        raise CliError(f"FILE: {path} holds no events")
    return [json.dumps(item, ensure_ascii=False).encode() for item in items]


async def cmd_publish(settings: Settings, args: argparse.Namespace) -> int:
    import rules

    if args.office and not rules.is_known_province(args.office):
        raise CliError(f"--office: unknown province code '{args.office}'")
    results = await publish_raw(settings, _events_from_file(Path(args.file)), office=args.office)
    if args.json:
        print_json(results)
    else:
        for r in results:
            dup = " (duplicate: already in the stream)" if r["duplicate"] else ""
            print(f"published {r['event_id']} on {r['subject']} as #{r['stream_sequence']}{dup}")
    return EXIT_OK


async def cmd_simulate_births(settings: Settings, args: argparse.Namespace) -> int:
    import rules
    from registry.seed import family, synthetic_birth

    if args.count < 1:
        raise CliError("N: must be a positive number of births")
    if args.province and not rules.is_known_province(args.province):
        raise CliError(f"--province: unknown province code '{args.province}'")
    population = await _population_size(settings)
    if population == 0:
        raise CliError("no population yet: run `python starter.py seed-population 1000` first")
    codes = sorted(rules.provinces())
    candidates = [i for i in range(population) if not args.province or codes[i % len(codes)] == args.province]
    if not candidates:
        raise CliError(f"--province: no seeded household in province {args.province}; seed more families")
    rng = random.Random()
    today = date.today()
    events = []
    for _ in tqdm(range(args.count), unit="birth", desc="generating", disable=args.json):
        fam = family(rng.choice(candidates))
        reg_no = "SIM" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=11))
        dob = today - timedelta(days=rng.randrange(3, 40))
        payload = synthetic_birth(fam, registration_number=reg_no, date_of_birth=dob,
                                  sex=rng.choice(["male", "female"]), language=rng.choice(["vi", "vi", "en"]))
        events.append(encode_event(make_birth_event(payload)))
    results = await publish_raw(settings, events, progress=not args.json)
    if args.json:
        print_json(results)
    else:
        print(f"published {len(results)} synthetic births")
    return EXIT_OK


async def _population_size(settings: Settings) -> int:
    from sqlalchemy import func, select

    from registry.models import Household

    registry = registry_for(settings)
    try:
        async with registry.unit_of_work() as session:
            return int(await session.scalar(select(func.count()).select_from(Household)) or 0)
    finally:
        await registry.close()
