"""The bridge's span continues the event's trace, and its counters follow each outcome (fake messages)."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from events import bridge as bridge_module
from events.birth_registered import BIRTH_REGISTERED
from infra.metrics import OTHER_EVENT_TYPE
from tests.unit.test_bridge_rules import FakeMsg, bridge, raw_birth, run

PARENT_TRACE, PARENT_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(bridge_module, "tracer", lambda: provider.get_tracer("test"))
    return exporter


def count(name: str, event_type: str) -> float:
    return REGISTRY.get_sample_value(name, {"type": event_type}) or 0.0


def with_traceparent(raw: bytes) -> bytes:
    doc = json.loads(raw)
    doc["traceparent"] = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"
    return json.dumps(doc).encode()


async def test_processed_event_is_a_consumer_span_in_the_publishers_trace(spans: InMemorySpanExporter) -> None:
    received, processed = (count("lifeevents_events_received_total", BIRTH_REGISTERED),
                           count("lifeevents_events_processed_total", BIRTH_REGISTERED))
    msg = await run(bridge(), FakeMsg("civil.079.birth_registered", with_traceparent(raw_birth("079"))))

    assert msg.outcome == [("ack", None)]
    [span] = spans.get_finished_spans()
    assert span.name == f"process {BIRTH_REGISTERED}" and span.kind is SpanKind.CONSUMER
    assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT_SPAN
    assert f"{span.context.trace_id:032x}" == PARENT_TRACE
    assert (span.attributes or {})["lifeevents.outcome"] == "processed"
    assert count("lifeevents_events_received_total", BIRTH_REGISTERED) == received + 1
    assert count("lifeevents_events_processed_total", BIRTH_REGISTERED) == processed + 1


async def test_binary_mode_header_is_continued_when_the_event_has_no_traceparent(
        spans: InMemorySpanExporter) -> None:
    await run(bridge(), FakeMsg("civil.079.birth_registered", raw_birth("079"),
                                headers={"ce-traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"}))
    [span] = spans.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == PARENT_TRACE


async def test_dead_letter_is_counted_under_other_for_an_unknown_type(spans: InMemorySpanExporter) -> None:
    doc = json.loads(raw_birth("079"))
    doc["type"] = "vn.gov.civil.marriage.registered"
    before = count("lifeevents_events_dead_lettered_total", OTHER_EVENT_TYPE)
    msg = await run(bridge(), FakeMsg("civil.079.birth_registered", json.dumps(doc).encode()))

    assert msg.outcome == [("term", None)]
    assert count("lifeevents_events_dead_lettered_total", OTHER_EVENT_TYPE) == before + 1
    [span] = spans.get_finished_spans()
    assert span.parent is None and span.status.status_code is StatusCode.ERROR
    assert span.name == f"process {OTHER_EVENT_TYPE}"


async def test_failure_is_counted_as_retried(spans: InMemorySpanExporter) -> None:
    before = count("lifeevents_events_retried_total", BIRTH_REGISTERED)
    msg = await run(bridge(birth_fail=ConnectionError("Temporal unavailable")),
                    FakeMsg("civil.079.birth_registered", raw_birth("079")))
    assert msg.outcome[0][0] == "nak"
    assert count("lifeevents_events_retried_total", BIRTH_REGISTERED) == before + 1
