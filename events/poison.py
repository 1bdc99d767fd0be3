"""What keeps one bad message from stopping the bridge: any failure to read an event becomes a reason (so it is
dead-lettered, never an unobserved exception), a dead-letter copy is cut to what the server accepts, the durable
consumers follow the settings, and a NATS client that does not die on a subject or header that is not UTF-8."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from events.reasons import InvalidEvent, _reason
from infra.redaction import redact
from infra.settings import Settings

log = logging.getLogger("lifeevents.bridge")

TRUNCATED_HEADER = "Dead-Letter-Truncated"
HEADER_OVERHEAD = 512
"""Room kept for the protocol line and header framing when fitting a dead letter under the server's max payload."""
ACK_WAIT_SECONDS = 60.0


def unreadable_reason(exc: BaseException) -> InvalidEvent:
    """A dead-letter reason for an exception other than InvalidEvent raised while decoding or validating an
    event (OverflowError from a date, UnicodeDecodeError, a library's ValueError): its type, never its text,
    which may quote the event."""
    if isinstance(exc, UnicodeError):
        why = "is not valid UTF-8"
    elif isinstance(exc, OverflowError):
        why = "holds a value out of range (OverflowError)"
    elif isinstance(exc, RecursionError):
        why = "is nested too deeply (RecursionError)"
    else:
        why = f"could not be read ({type(exc).__name__})"
    return InvalidEvent(_reason("envelope", why))


def gave_up_reason(deliveries: int, exc: BaseException) -> InvalidEvent:
    text = redact(str(exc))[:300]
    return InvalidEvent(_reason("delivery", f"gave up after {deliveries} deliveries: {type(exc).__name__}: {text}"))


def fitted_copy(data: bytes, headers: dict[str, str], max_payload: int) -> tuple[bytes, dict[str, str]]:
    """The dead letter's body and headers cut so the whole message fits `max_payload`; a cut body carries
    `Dead-Letter-Truncated: <original size>` (the original stays in its stream, named by the sequence header)."""
    header_size = sum(len(k) + len(v.encode()) + 4 for k, v in headers.items()) + HEADER_OVERHEAD
    room = max_payload - header_size - len(TRUNCATED_HEADER) - 24
    if len(data) + header_size <= max_payload:
        return data, headers
    return data[:max(0, room)], {**headers, TRUNCATED_HEADER: str(len(data))}


def consumer_config(settings: Settings, durable: str, subjects: str) -> ConsumerConfig:
    """The bridge's durable consumer as the settings want it. The server's `max_deliver` is one more than the
    bridge's own limit: the bridge dead-letters at `bridge_max_deliver` with the last error, the server's limit
    is only a backstop for a message the client could not even read."""
    return ConsumerConfig(durable_name=durable, filter_subject=subjects, ack_policy=AckPolicy.EXPLICIT,
                          deliver_policy=DeliverPolicy.ALL, ack_wait=ACK_WAIT_SECONDS,
                          max_deliver=settings.bridge_max_deliver + 1,
                          max_ack_pending=settings.bridge_concurrency * 4)


async def sync_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """Create the durable consumer, or update (same call, same durable name) an existing one whose editable
    fields differ from `config`
    (a changed setting reaches a consumer made by an earlier run)."""
    durable = config.durable_name or ""
    try:
        current = (await js.consumer_info(stream, durable)).config
    except NotFoundError:
        await js.add_consumer(stream, config)
        return
    editable = ("ack_wait", "max_deliver", "max_ack_pending")
    changed = [f for f in editable if getattr(current, f) != getattr(config, f)]
    if changed:
        log.info("updating consumer %s on %s: %s", durable, stream, ", ".join(changed))
        await js.add_consumer(stream, config)  # the server updates the editable fields of an existing durable


REASON_HEADER = "Dead-Letter-Reason"
ORIGINAL_SUBJECT_HEADER = "Original-Subject"
ORIGINAL_SEQUENCE_HEADER = "Original-Stream-Sequence"


async def dead_letter(js: JetStreamContext, msg: Msg, reason: str, *, subject: str, dlq_stream: str,
                      retry_delay: float, extra_headers: Mapping[str, str] | None = None) -> bool:
    """Copy a message that cannot be handled to the dead-letter stream on `subject`, with its reason and where it
    came from (cut to fit the server's max payload: `fitted_copy`), then `term` it: True. When the copy cannot be
    stored, the message is nak'ed to come back after `retry_delay` instead (nothing is lost): False."""
    meta = msg.metadata
    seq = meta.sequence.stream if meta and meta.sequence else 0
    stream = meta.stream if meta and meta.stream else "unknown"
    headers = {**(extra_headers or {}), REASON_HEADER: reason[:4000], ORIGINAL_SUBJECT_HEADER: msg.subject,
               ORIGINAL_SEQUENCE_HEADER: str(seq), "Nats-Msg-Id": f"dlq-{stream}-{seq}"}
    nc = getattr(js, "_nc", None)
    data, headers = fitted_copy(msg.data, headers, int(getattr(nc, "max_payload", 0) or 1024 * 1024))
    try:
        await js.publish(subject, data, headers=headers, stream=dlq_stream)
    except Exception as exc:  # noqa: BLE001 - keep the message for a later delivery rather than lose it
        log.warning("dead-letter publish failed (%s); message kept for redelivery", type(exc).__name__)
        await msg.nak(delay=retry_delay)
        return False
    log.warning("dead-lettered %s seq %d on %s: %s", stream, seq, subject, reason)
    await msg.term()
    return True


async def subscribe_durable(js: JetStreamContext, stream: str, config: ConsumerConfig) -> Any:
    """Create or update the durable pull consumer (`sync_consumer`) and bind a pull subscription to it."""
    await sync_consumer(js, stream, config)
    return await js.pull_subscribe_bind(config.durable_name or "", stream=stream)


async def consumer_gone(js: JetStreamContext, stream: str, durable: str) -> bool:
    """Whether the server says the durable consumer (or its stream) no longer exists: fetching from it then fails
    for good (503, no responders), so its owner must create it again. Any other answer, or none (the server is
    unreachable): not known to be gone, keep retrying."""
    try:
        await js.consumer_info(stream, durable)
    except NotFoundError:
        return True
    except Exception:  # noqa: BLE001 - cannot tell now; the fetch loop retries
        return False
    return False


class TolerantClient(Client):
    """A NATS client whose read loop survives a message with a subject or headers that are not UTF-8 (nats-py
    decodes them strictly in `_process_msg`; the exception ends its read loop and the connection goes silent).
    Such bytes are escaped (``\\xff``), so the bridge sees the message and dead-letters it."""

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes,
                           headers: bytes) -> Any:
        subject, headers = _escaped(subject), _escaped(headers) if headers else headers
        return await super()._process_msg(sid, subject, reply, data, headers)  # type: ignore[misc]


def _escaped(raw: bytes) -> bytes:
    try:
        raw.decode()
        return raw
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace").encode()


async def connect_tolerant(servers: str, **options: Any) -> Client:
    nc = TolerantClient()
    await nc.connect(servers, **options)
    return nc
