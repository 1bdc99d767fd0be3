"""The bridge's dispatch by CloudEvent type, its own checks (subject and payload must agree), dead letters,
nak on failure and redelivery delays — with fake messages, JetStream and handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest

from events.birth_registered import BIRTH_REGISTERED, BirthHandler, make_birth_event
from events.bridge import REASON_HEADER, EventBridge, backoff_seconds
from events.envelope import CloudEvent, InvalidEvent, encode_event
from events.vaccination_administered import VaccinationAdministered, VaccinationHandler, make_vaccination_event
from infra.settings import Settings
from registry.seed import first_family_in, synthetic_birth

CHILD_ID = "079324000123"  # HCMC, a girl born in 2024


@dataclass
class Sequence:
    stream: int = 7


@dataclass
class Metadata:
    stream: str = "CIVIL"
    num_delivered: int = 1
    sequence: Sequence = field(default_factory=Sequence)


@dataclass
class FakeMsg:
    subject: str
    data: bytes
    metadata: Metadata = field(default_factory=Metadata)
    headers: dict[str, str] | None = None
    outcome: list[tuple[str, Any]] = field(default_factory=list)

    async def ack(self) -> None:
        self.outcome.append(("ack", None))

    async def nak(self, delay: float | None = None) -> None:
        self.outcome.append(("nak", delay))

    async def term(self) -> None:
        self.outcome.append(("term", None))


class FakeJetStream:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    async def publish(self, subject: str, data: bytes, headers: dict[str, str], stream: str) -> None:
        self.published.append((subject, data, headers))


class RecordingHandler:
    """Wraps a real handler's parsing; records what it was asked to handle, or raises `fail`."""

    def __init__(self, real: Any, fail: Exception | None = None) -> None:
        self.event_type = real.event_type
        self.subject_domain = real.subject_domain
        self.subject_event = real.subject_event
        self.parse = real.parse
        self.fail = fail
        self.handled: list[tuple[CloudEvent, Any, str]] = []

    async def handle(self, event: CloudEvent, payload: Any, subject: str) -> None:
        if self.fail is not None:
            raise self.fail
        self.handled.append((event, payload, subject))


def real_handlers() -> tuple[Any, Any]:
    return BirthHandler(None, None), VaccinationHandler(None, None)  # type: ignore[arg-type]


def bridge(birth_fail: Exception | None = None, vaccination_fail: Exception | None = None) -> Any:
    birth, vaccination = real_handlers()
    handlers = [RecordingHandler(birth, birth_fail), RecordingHandler(vaccination, vaccination_fail)]
    return EventBridge(js=FakeJetStream(), handlers=handlers, settings=Settings())  # type: ignore[arg-type]


def raw_birth(province: str) -> bytes:
    payload = synthetic_birth(first_family_in(province), registration_number="UNIT0000001",
                              date_of_birth=date.today() - timedelta(days=3), sex="male")
    return encode_event(make_birth_event(payload))


def raw_vaccination(province: str = "079", **changes: Any) -> bytes:
    data = {"person_id_number": CHILD_ID, "vaccine": "BCG", "dose": 1,
            "administered_on": (date.today() - timedelta(days=1)).isoformat(), "health_station_code": "TYT-079-01",
            "province_code": province, **changes}
    return encode_event(make_vaccination_event(VaccinationAdministered.model_validate(data), event_id="v-1"))


async def run(b: Any, msg: FakeMsg) -> FakeMsg:
    await b.handle(msg)
    return msg


def dead_letter(b: Any) -> tuple[str, bytes, dict[str, str]]:
    assert len(b.js.published) == 1, b.js.published
    return b.js.published[0]  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------ dispatch


async def test_birth_goes_to_the_birth_handler_and_is_acked() -> None:
    b = bridge()
    msg = await run(b, FakeMsg("civil.079.birth_registered", raw_birth("079")))

    assert msg.outcome == [("ack", None)] and b.processed == 1
    (event, payload, subject), = b.handlers[BIRTH_REGISTERED].handled
    assert event.subject == "UNIT0000001" and payload.province_code == "079"
    assert subject == "civil.079.birth_registered"
    assert b.js.published == []


async def test_vaccination_goes_to_the_vaccination_handler() -> None:
    b = bridge()
    msg = await run(b, FakeMsg("health.079.vaccination_administered", raw_vaccination(),
                               Metadata(stream="HEALTH")))

    assert msg.outcome == [("ack", None)]
    handled = [h for h in b.handlers.values() if h.handled]
    assert len(handled) == 1 and handled[0].subject_event == "vaccination_administered"
    _, payload, _ = handled[0].handled[0]
    assert payload.vaccine == "BCG" and payload.person_id_number == CHILD_ID


async def test_event_type_without_handler_is_dead_lettered_not_dropped() -> None:
    b = bridge()
    doc = json.loads(raw_birth("079"))
    doc["type"] = "vn.gov.civil.marriage.registered"
    original = json.dumps(doc).encode()
    msg = await run(b, FakeMsg("civil.079.unknown_event_type", original))

    assert msg.outcome == [("term", None)] and b.dead_lettered == 1
    subject, data, headers = dead_letter(b)
    assert subject == "dlq.civil.079.unknown_event_type" and data == original
    assert headers[REASON_HEADER] == "envelope.type: no handler for event type 'vn.gov.civil.marriage.registered'"
    assert headers["Nats-Msg-Id"] == "dlq-CIVIL-7"
    assert all(not h.handled for h in b.handlers.values())


@pytest.mark.parametrize(("data", "reason"), [
    (b"{not json", "envelope: not valid JSON"),
    (b'{"specversion": "1.0", "data": {}}', "envelope.type: is required"),
    (b'{"type": ["x"]}', "envelope.type: must be a string"),
])
async def test_undecodable_or_typeless_events_are_dead_lettered(data: bytes, reason: str) -> None:
    b = bridge()
    msg = await run(b, FakeMsg("civil.079.birth_registered", data))

    assert msg.outcome == [("term", None)]
    assert reason in dead_letter(b)[2][REASON_HEADER]


async def test_handler_validation_reasons_reach_the_dead_letter() -> None:
    b = bridge()
    doc = json.loads(raw_vaccination())
    doc["data"]["vaccine"] = "SMALLPOX"
    doc["data"]["dose"] = 0
    msg = await run(b, FakeMsg("health.079.vaccination_administered", json.dumps(doc).encode(),
                               Metadata(stream="HEALTH", sequence=Sequence(3))))

    assert msg.outcome == [("term", None)]
    subject, _, headers = dead_letter(b)
    assert subject == "dlq.health.079.vaccination_administered" and headers["Nats-Msg-Id"] == "dlq-HEALTH-3"
    assert headers[REASON_HEADER] == (
        "data.vaccine: unknown vaccine code 'SMALLPOX' (rules/data/vaccination_schedule.yaml); "
        "data.dose: must be at least 1")


async def test_invalid_event_raised_by_a_handler_is_dead_lettered() -> None:
    b = bridge(vaccination_fail=InvalidEvent("data.person_id_number: no citizen with this personal ID number"))
    msg = await run(b, FakeMsg("health.079.vaccination_administered", raw_vaccination()))

    assert msg.outcome == [("term", None)]
    assert dead_letter(b)[2][REASON_HEADER] == "data.person_id_number: no citizen with this personal ID number"


async def test_other_failures_nak_with_backoff_and_nothing_is_dead_lettered() -> None:
    b = bridge(birth_fail=ConnectionError("Temporal unavailable"))
    msg = await run(b, FakeMsg("civil.079.birth_registered", raw_birth("079"), Metadata(num_delivered=3)))

    assert msg.outcome == [("nak", 2.0)] and b.retried == 1 and b.js.published == []


async def test_dead_letter_publish_failure_naks() -> None:
    b = bridge()

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("NATS down")

    b.js.publish = broken
    msg = await run(b, FakeMsg("civil.079.birth_registered", b"nope"))

    assert msg.outcome == [("nak", 0.5)] and b.dead_lettered == 0


def test_two_handlers_for_one_type_are_refused() -> None:
    birth, _ = real_handlers()
    with pytest.raises(ValueError, match="two handlers"):
        EventBridge(js=None, handlers=[birth, birth], settings=Settings())  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ subject


def test_event_on_its_province_subject_is_accepted() -> None:
    _, event, payload = bridge().validate(FakeMsg("civil.079.birth_registered", raw_birth("079")))
    assert payload.province_code == "079" and event.subject == "UNIT0000001"


def test_subject_province_must_match_the_payload() -> None:
    with pytest.raises(InvalidEvent) as caught:
        bridge().validate(FakeMsg("civil.001.birth_registered", raw_birth("079")))
    assert "province '001'" in str(caught.value) and "data.province_code '079'" in str(caught.value)


@pytest.mark.parametrize(("subject", "raw"), [
    ("health.079.birth_registered", lambda: raw_birth("079")),
    ("civil.079.death_registered", lambda: raw_birth("079")),
    ("civil.079.vaccination_administered", raw_vaccination),
    ("health.079.birth_registered", raw_vaccination),
])
def test_subject_must_be_the_handlers_subject(subject: str, raw: Any) -> None:
    with pytest.raises(InvalidEvent) as caught:
        bridge().validate(FakeMsg(subject, raw()))
    assert str(caught.value).startswith(f"subject: {subject} is not a subject for vn.gov.")
    assert "(expected " in str(caught.value)


def test_subject_with_too_few_tokens() -> None:
    with pytest.raises(InvalidEvent, match="is not <domain>.<province>.<event>"):
        bridge().validate(FakeMsg("civil.birth_registered", raw_birth("079")))


def test_redelivery_delay_doubles_and_is_capped() -> None:
    assert [backoff_seconds(n, 30.0) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


# ------------------------------------------------------------------------------------------ publishing


@pytest.mark.parametrize(("event_type", "subject", "stream"), [
    ("vn.gov.civil.birth.registered", "civil.079.birth_registered", "CIVIL"),
    ("vn.gov.health.vaccination.administered", "health.079.vaccination_administered", "HEALTH"),
    ("vn.gov.civil.marriage.registered", "civil.079.unknown_event_type", "CIVIL"),
    (None, "civil.079.unknown_event_type", "CIVIL"),
])
def test_publisher_chooses_subject_and_stream_by_type(event_type: str | None, subject: str, stream: str) -> None:
    from cli.publishing import _subject_and_id
    from events.streams import stream_for

    doc = {"id": "e-1", "type": event_type, "data": {"province_code": "079"}}
    assert _subject_and_id(doc, b"")[:2] == (subject, "e-1")
    assert stream_for(Settings(), subject) == stream


def test_message_id_is_derived_from_source_and_id() -> None:
    from cli.publishing import _subject_and_id, nats_msg_id

    a = {"id": "e-1", "source": "urn:office:a", "type": "x", "data": {}}
    b = {**a, "source": "urn:office:b"}
    assert _subject_and_id(a, b"")[2] == nats_msg_id("urn:office:a", "e-1")
    assert nats_msg_id("urn:office:a", "e-1") != nats_msg_id("urn:office:b", "e-1")  # two offices, same id
    assert nats_msg_id("urn:office:a", "e-1") == nats_msg_id("urn:office:a", "e-1")  # a re-send
    assert len(nats_msg_id("urn:office:a", "e-1")) == 32
    assert _subject_and_id(b, b"")[2] != _subject_and_id(a, b"")[2]
    no_source = {"id": "e-1", "type": "x", "data": {}}
    assert _subject_and_id(no_source, b"raw")[2] == _subject_and_id(no_source, b"raw")[2] != "e-1"
