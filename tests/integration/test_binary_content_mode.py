"""A producer using the official CloudEvents SDK in binary content mode (the NATS protocol binding: attributes in
`ce-` headers, data in the body) is understood end to end, on the real servers."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from cloudevents.core.bindings.http import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkCloudEvent
from nats.js import JetStreamContext

from cli.publishing import nats_msg_id
from events.bridge import ORIGINAL_SUBJECT_HEADER, REASON_HEADER
from events.streams import stream_for, subject_for
from infra.settings import Settings
from tests.helpers import eventually
from tests.integration.test_birth_end_to_end import birth_event, child_of, wait_all_stages

pytestmark = pytest.mark.integration


def sdk_binary_message(structured: bytes, **attribute_changes: Any) -> tuple[str, dict[str, str], bytes]:
    """(subject, NATS headers, body) of the event as the SDK writes it in binary mode. The SDK's binding is HTTP;
    the NATS binding uses the same `ce-` header names and content-type, so the headers carry over as they are."""
    document = json.loads(structured)
    data = document.pop("data")
    attributes = {**document, "time": datetime.fromisoformat(document["time"]),
                  "datacontenttype": "application/json; charset=utf-8", **attribute_changes}
    message = to_binary(SdkCloudEvent(attributes=attributes, data=data), JSONFormat())
    headers = {**message.headers, "Nats-Msg-Id": nats_msg_id(document["source"], document["id"])}
    return subject_for(document["type"], data["province_code"]), headers, message.body


async def publish_as_office(settings: Settings, subject: str, body: bytes, headers: dict[str, str]) -> None:
    """Publish as the civil-status office of the subject's province (the only identity the server lets)."""
    import worker
    from cli.publishing import publisher_identity

    nc = await worker.connect_nats(settings, publisher_identity(subject), name="sdk-producer")
    try:
        await nc.jetstream().publish(subject, body, headers=headers, stream=stream_for(settings, subject))
    finally:
        await nc.drain()


async def test_binary_mode_event_built_with_the_cloudevents_sdk_completes_the_birth(
        settings: Settings, service: Any) -> None:
    reg, structured = birth_event(11, sex="female")
    subject, headers, body = sdk_binary_message(structured)
    assert headers["ce-specversion"] == "1.0" and "ce-type" in headers and "content-type" in headers
    assert json.loads(body)["registration_number"] == reg  # the body is the data alone

    await publish_as_office(settings, subject, body, headers)
    await wait_all_stages(service, [reg])

    child = await child_of(service, reg)
    assert child.personal_id_number is not None


async def test_binary_mode_event_with_a_bad_attribute_is_dead_lettered_with_its_headers_and_one_reason(
        settings: Settings, service: Any, admin_js: JetStreamContext) -> None:
    _, structured = birth_event(12)
    subject, headers, body = sdk_binary_message(structured, dataschema="not a uri")
    await publish_as_office(settings, subject, body, headers)

    async def kept() -> Any:
        info = await admin_js.stream_info(settings.dlq_stream)
        if not info.state.messages:
            return None
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await admin_js.get_msg(settings.dlq_stream, seq)
            if (msg.headers or {}).get("ce-id") == headers["ce-id"]:
                return msg
        return None

    msg = await eventually(kept, lambda m: m is not None, within=30, what="the binary event dead-lettered")
    assert msg.headers[ORIGINAL_SUBJECT_HEADER] == subject
    assert msg.headers[REASON_HEADER] == "envelope.dataschema: must be an absolute URI (RFC 3986)"
    assert msg.data == body and msg.headers["ce-dataschema"] == headers["ce-dataschema"]
