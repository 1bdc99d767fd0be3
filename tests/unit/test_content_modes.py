"""Both CloudEvents content modes of the NATS binding reach the same validation: binary (attributes in `ce-`
headers, data in the body) and structured (the whole event in the body); media types with parameters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from events.birth_registered import BIRTH_REGISTERED, BirthRegistered
from events.bridge import REASON_HEADER
from events.content_modes import message_document
from events.envelope import InvalidEvent, parse_document
from registry.seed import first_family_in
from tests.unit.test_bridge_rules import FakeMsg, bridge, dead_letter, raw_birth, run

SUBJECT = "civil.079.birth_registered"


def binary_parts(structured: bytes, content_type: str | None = "application/json; charset=utf-8",
                 **attribute_changes: str) -> tuple[dict[str, str], bytes]:
    """The same event as a binary-mode NATS message: `ce-` headers and the data as the body."""
    document = json.loads(structured)
    data = document.pop("data")
    document.pop("datacontenttype", None)
    document.update(attribute_changes)
    headers = {f"ce-{name}": str(value) for name, value in document.items()}
    if content_type is not None:
        headers["content-type"] = content_type
    return headers, json.dumps(data, ensure_ascii=False).encode()


def personal_values() -> list[str]:
    fam = first_family_in("079")
    return [fam.mother.id_number, fam.mother.full_name, fam.father.id_number, fam.street]


def test_binary_and_structured_messages_give_the_same_document() -> None:
    structured = raw_birth("079")
    headers, body = binary_parts(structured)

    binary_document = message_document(headers, body)
    structured_document = message_document(None, structured)

    assert binary_document.pop("datacontenttype") == "application/json; charset=utf-8"
    structured_document.pop("datacontenttype", None)
    assert binary_document == structured_document


async def test_binary_birth_with_mixed_case_headers_is_handled_and_acked() -> None:
    headers, body = binary_parts(raw_birth("079"))
    headers = {name.upper() if name == "ce-id" else name.title(): value for name, value in headers.items()}
    b = bridge()

    msg = await run(b, FakeMsg(SUBJECT, body, headers=headers))

    assert msg.outcome == [("ack", None)], b.js.published
    (event, payload, _), = b.handlers[BIRTH_REGISTERED].handled
    assert event.type == BIRTH_REGISTERED and event.subject == "UNIT0000001"
    assert event.datacontenttype == "application/json; charset=utf-8"
    assert payload.registration_number == "UNIT0000001"


async def test_binary_event_with_a_bad_attribute_gets_the_same_reason_as_a_structured_one() -> None:
    structured = json.loads(raw_birth("079"))
    structured["time"] = "yesterday"
    headers, body = binary_parts(raw_birth("079"), time="yesterday")
    structured_bridge, binary_bridge = bridge(), bridge()

    await run(structured_bridge, FakeMsg(SUBJECT, json.dumps(structured).encode()))
    msg = await run(binary_bridge, FakeMsg(SUBJECT, body, headers=headers))

    _, _, structured_headers = dead_letter(structured_bridge)
    _, kept_body, kept_headers = dead_letter(binary_bridge)
    assert msg.outcome == [("term", None)]
    assert kept_headers[REASON_HEADER] == structured_headers[REASON_HEADER]
    assert kept_headers[REASON_HEADER].startswith("envelope.time: ")
    assert kept_body == body and kept_headers["ce-time"] == "yesterday"  # the event is kept whole


async def test_binary_event_with_a_bad_data_field_names_the_field_and_no_personal_value() -> None:
    structured = json.loads(raw_birth("079"))
    structured["data"]["mother"]["id_number"] = "12345"
    headers, body = binary_parts(json.dumps(structured).encode())
    b = bridge()

    await run(b, FakeMsg(SUBJECT, body, headers=headers))

    _, _, kept = dead_letter(b)
    reasons = kept[REASON_HEADER].split("; ")
    assert [r.split(":")[0] for r in reasons] == ["data.mother.id_number"]
    assert not any(value in kept[REASON_HEADER] for value in [*personal_values(), "12345"])


def test_undecodable_header_value_is_a_reason_not_a_crash() -> None:
    headers, body = binary_parts(raw_birth("079"))
    headers["ce-source"] = "urn:office:\ufffd"  # what the NATS client makes of bytes that are not UTF-8

    with pytest.raises(InvalidEvent) as caught:
        message_document(headers, body)

    assert "header ce-source: not valid UTF-8" in caught.value.reasons
    assert "envelope.source: is required" in caught.value.reasons


@pytest.mark.parametrize(("change", "reason"), [
    ({"content_type": "text/plain"}, "envelope.datacontenttype: must be application/json (parameters allowed), "
                                     "got 'text/plain'"),
    ({"content_type": "application/json; charset=iso-8859-1"},
     "envelope.datacontenttype: charset must be utf-8, got 'iso-8859-1'"),
    ({"datacontenttype": "application/json"},
     "header ce-datacontenttype: in binary mode datacontenttype is the content-type header"),
])
def test_binary_content_type_problems_are_named(change: dict[str, str], reason: str) -> None:
    headers, body = binary_parts(raw_birth("079"), **change)

    with pytest.raises(InvalidEvent) as caught:
        message_document(headers, body)

    assert reason in caught.value.reasons


def test_binary_body_that_is_not_json_is_a_data_reason() -> None:
    headers, _ = binary_parts(raw_birth("079"))

    with pytest.raises(InvalidEvent) as caught:
        message_document(headers, b"{not json")

    assert caught.value.reasons == ["data: not valid JSON (Expecting property name enclosed in double quotes: "
                                    "line 1 column 2)"]


def test_binary_mode_without_content_type_reads_the_body_as_json() -> None:
    headers, body = binary_parts(raw_birth("079"), content_type=None)

    document = message_document(headers, body)

    assert "datacontenttype" not in document and document["data"]["registration_number"] == "UNIT0000001"


@pytest.mark.parametrize("content_type", ["application/cloudevents+json",
                                          "application/cloudevents+json; charset=UTF-8"])
def test_structured_mode_may_say_so_in_its_content_type(content_type: str) -> None:
    structured = raw_birth("079")

    assert message_document({"content-type": content_type, "Nats-Msg-Id": "x"}, structured) == json.loads(structured)


def test_structured_event_with_an_extension_header_stays_structured() -> None:
    structured = raw_birth("079")

    assert message_document({"ce-traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                            structured) == json.loads(structured)


async def test_binary_event_without_specversion_is_told_so() -> None:
    headers, body = binary_parts(raw_birth("079"))
    del headers["ce-specversion"]
    b = bridge()

    await run(b, FakeMsg(SUBJECT, body, headers=headers))

    _, _, kept = dead_letter(b)
    assert kept[REASON_HEADER] == "envelope.specversion: is required"


def test_structured_batch_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidEvent) as caught:
        message_document({"content-type": "application/cloudevents-batch+json"}, b"[]")

    assert caught.value.reasons == ["header content-type: must be application/cloudevents+json (parameters "
                                    "allowed), got 'application/cloudevents-batch+json'"]


@pytest.mark.parametrize("datacontenttype", ["application/json; charset=utf-8", "Application/JSON;charset=\"utf8\"",
                                             "application/json"])
def test_datacontenttype_with_parameters_is_accepted(datacontenttype: str) -> None:
    document: dict[str, Any] = json.loads(raw_birth("079"))
    document["datacontenttype"] = datacontenttype

    event, payload = parse_document(document, BIRTH_REGISTERED, BirthRegistered)

    assert event.datacontenttype == datacontenttype and payload.registration_number == "UNIT0000001"


@pytest.mark.parametrize(("datacontenttype", "reason"), [
    ("application/json; charset=latin1", "envelope.datacontenttype: charset must be utf-8, got 'latin1'"),
    ("application/xml", "envelope.datacontenttype: must be application/json (parameters allowed), got "
                        "'application/xml'"),
    ("application/json; utf-8", "envelope.datacontenttype: parameter 'utf-8' is not name=value"),
])
def test_other_datacontenttypes_are_refused_with_the_reason(datacontenttype: str, reason: str) -> None:
    document: dict[str, Any] = json.loads(raw_birth("079"))
    document["datacontenttype"] = datacontenttype

    with pytest.raises(InvalidEvent) as caught:
        parse_document(document, BIRTH_REGISTERED, BirthRegistered)

    assert caught.value.reasons == [reason]
