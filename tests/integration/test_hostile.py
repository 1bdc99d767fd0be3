"""The hostile suite through the real bridge (the session service): every corpus case, an invalid event just
under the server's max payload, a subject whose bytes are not UTF-8 and a sample of hypothesis mutations,
interleaved with valid births (some with template syntax and HTML in the child's name). Afterwards: every bad
event is in the DLQ with a reason naming its field, no reason quotes a personal value, every valid birth
completed (so the bridge neither crashed nor stalled)."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cli.publishing import publisher_identity
from events.bridge import ORIGINAL_SEQUENCE_HEADER, REASON_HEADER
from events.poison import TRUNCATED_HEADER
from infra.settings import Settings
from tests.helpers import eventually
from tests.hostile_corpus import HOSTILE_NAMES, SUBJECT, corpus, oversized, valid_birth
from tests.integration.test_birth_end_to_end import birth_event, wait_all_stages
from tests.unit.test_bridge_rules import bridge
from tests.unit.test_poison_messages import HOSTILE_VALUE, PATHS, _apply, outcome_of

NON_UTF8_SUBJECT = b"civil.079.\xff\xfe"


async def dead_letters(js: Any, stream: str, first_seq: int) -> dict[int, dict[str, str]]:
    """Dead-letter headers by the original stream sequence, for dead letters stored from `first_seq` on."""
    info = await js.stream_info(stream)
    found = {}
    for seq in range(max(first_seq, info.state.first_seq), info.state.last_seq + 1):
        headers = (await js.get_msg(stream, seq)).headers or {}
        found[int(headers[ORIGINAL_SEQUENCE_HEADER])] = headers
    return found


def sampled_mutations(count: int) -> list[bytes]:
    """Up to `count` hypothesis mutations of a valid birth (each replacing a field) that are invalid."""
    bodies: list[bytes] = []

    @hypothesis_settings(max_examples=count * 2, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(PATHS), value=HOSTILE_VALUE)
    def collect(path: str, value: Any) -> None:
        doc = copy.deepcopy(valid_birth(f"HYPO{len(bodies):07d}"))
        _apply(doc, path, value, drop=False)
        body = json.dumps(doc).encode()
        if outcome_of(bridge(), SUBJECT, body) is not None:  # a replacement may happen to be valid
            bodies.append(body)

    collect()
    return bodies[:count]


async def test_hostile_events_are_dead_lettered_and_valid_ones_complete(
        settings: Settings, service: Any, admin_js: Any) -> None:
    import worker

    dlq_start = (await admin_js.stream_info(settings.dlq_stream)).state.last_seq + 1
    office = await worker.connect_nats(settings, publisher_identity(SUBJECT))
    js = office.jetstream()
    bad: dict[int, tuple[str, str]] = {}  # stream sequence → (label, field its reason must name)
    valid: list[str] = []
    try:
        async def publish_valid(name: str | None = None) -> None:
            reg, raw = birth_event(province="079")
            doc = json.loads(raw)
            if name is not None:
                doc["data"]["child"]["full_name"] = name
            await js.publish(SUBJECT, json.dumps(doc).encode())
            valid.append(reg)

        for n, (label, subject, body, field) in enumerate(corpus()):
            if not subject.startswith("civil.079."):
                if field == "subject":
                    continue  # only office 001 may publish on civil.001 (the server's authorization)
                subject = SUBJECT  # the body still names an unknown province
            bad[(await js.publish(subject, body)).seq] = (label, field)
            if n % 5 == 0:
                await publish_valid(name=HOSTILE_NAMES[n // 5 % len(HOSTILE_NAMES)] if n % 10 == 0 else None)
        big = oversized(office.max_payload)
        bad[(await js.publish(SUBJECT, big)).seq] = ("just under max payload", "data.child.full_name")
        for body in sampled_mutations(30):
            ack = await js.publish(SUBJECT, body)
            bad[ack.seq] = ("hypothesis mutation", "data")
        # A subject the client cannot decode: raw PUB bytes (nats-py only publishes str subjects).
        before = (await admin_js.stream_info(settings.civil_stream)).state.last_seq
        body = json.dumps(valid_birth()).encode()
        await office._send_command(b"PUB " + NON_UTF8_SUBJECT + b" %d\r\n" % len(body) + body + b"\r\n")
        await office.flush()
        await publish_valid()
    finally:
        await office.drain()

    after = (await admin_js.stream_info(settings.civil_stream)).state.last_seq
    non_utf8_seqs = [s for s in range(before + 1, after) if s not in bad]
    assert len(non_utf8_seqs) == 1, "the server did not store the non-UTF-8 subject"
    bad[non_utf8_seqs[0]] = ("non-UTF-8 subject", "subject")

    counts = await wait_all_stages(service, valid, within=120)
    assert all(counts.get(reg, 0) > 0 for reg in valid)

    async def letters() -> dict[int, dict[str, str]]:
        return await dead_letters(admin_js, settings.dlq_stream, dlq_start)

    found = await eventually(letters, lambda f: set(bad) <= set(f), within=60, what="every bad event dead-lettered")
    mother_id = valid_birth()["data"]["mother"]["id_number"]
    for seq, (label, field) in bad.items():
        reason = found[seq][REASON_HEADER]
        mutated_fields = {"data", "envelope", "subject"} if label == "hypothesis mutation" else {field}
        assert any(f in reason for f in mutated_fields), (label, reason)
        assert mother_id not in reason, (label, reason)
    assert found[max(s for s, (label, _) in bad.items() if label == "just under max payload")][
        TRUNCATED_HEADER] == str(len(big))
    print(f"\nhostile suite: {len(bad)} bad events, {len(set(bad) & set(found))} dead-lettered, "
          f"{len(valid)} valid completed")
