"""NATS headers the client cannot decode, through the real bridge (the session service), interleaved with valid
births: header names and values that are not UTF-8, a header block with no status line, a binary-mode event whose
`ce-type` is not UTF-8. Each message is sent as raw HPUB bytes (nats-py only sends str headers). Afterwards every
valid birth completed (the bridge neither crashed nor stalled), the binary-mode event is dead-lettered with a
reason naming the envelope, and a valid structured-mode birth carrying junk headers is still processed."""

from __future__ import annotations

import json
from typing import Any

from cli.publishing import publisher_identity
from events.bridge import REASON_HEADER
from infra.settings import Settings
from tests.helpers import eventually
from tests.hostile_corpus import SUBJECT
from tests.integration.test_birth_end_to_end import birth_event, wait_all_stages
from tests.integration.test_hostile import dead_letters


def hpub(subject: bytes, header_lines: list[bytes], body: bytes, *, status: bytes = b"NATS/1.0") -> bytes:
    """One raw HPUB frame: the header block as given (lines after the status line), then the body."""
    block = b"\r\n".join([status, *header_lines]) + b"\r\n\r\n"
    return b"HPUB %s %d %d\r\n" % (subject, len(block), len(block) + len(body)) + block + body + b"\r\n"


async def test_headers_the_client_cannot_decode_do_not_stop_the_bridge(
        settings: Settings, service: Any, admin_js: Any) -> None:
    import worker

    dlq_start = (await admin_js.stream_info(settings.dlq_stream)).state.last_seq + 1
    civil_before = (await admin_js.stream_info(settings.civil_stream)).state.last_seq
    office = await worker.connect_nats(settings, publisher_identity(SUBJECT))
    js = office.jetstream()
    valid: list[str] = []

    async def publish_valid() -> None:
        reg, raw = birth_event(province="079")
        await js.publish(SUBJECT, raw)
        valid.append(reg)

    subject = SUBJECT.encode()
    try:
        await publish_valid()
        junk_reg, junk_body = birth_event(province="079")  # a valid event whose extra headers are junk
        await office._send_command(hpub(subject, [b"X-Note: \xff\xfe caf\xe9", b"X-\xff\xfe: v"], junk_body))
        await publish_valid()
        document = json.loads(birth_event(province="079")[1])  # binary mode: attributes in ce- headers
        await office._send_command(hpub(subject, [
            b"ce-specversion: 1.0", b"ce-type: vn.gov.civil.birth.\xff\xfe", b"ce-id: bad-ce-type-1",
            b"ce-source: urn:vn:civil-status:079", b"content-type: application/json"],
            json.dumps(document["data"]).encode()))
        await publish_valid()
        await office._send_command(hpub(subject, [b"X-Any: 1"], b'{"specversion": "1.0"}', status=b"\xff\xfe/1.0"))
        await office.flush()
        await publish_valid()
    finally:
        await office.drain()

    civil_after = (await admin_js.stream_info(settings.civil_stream)).state.last_seq
    raw_sequences = set(range(civil_before + 1, civil_after + 1))
    assert len(raw_sequences) == len(valid) + 3, "the server did not store every raw message"

    counts = await wait_all_stages(service, [*valid, junk_reg], within=120)
    assert all(counts.get(reg, 0) > 0 for reg in [*valid, junk_reg])

    found = await eventually(lambda: dead_letters(admin_js, settings.dlq_stream, dlq_start),
                             lambda f: len(set(f) & raw_sequences) >= 2, within=60,
                             what="the binary-mode event and the bad header block dead-lettered")
    reasons = [found[seq][REASON_HEADER] for seq in sorted(set(found) & raw_sequences)]
    assert any("envelope.type" in r for r in reasons), reasons
    assert all(r for r in reasons)
    print(f"\nhostile headers: {len(valid) + 1} valid births completed, {len(reasons)} dead-lettered: {reasons}")
