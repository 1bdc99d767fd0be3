"""Tracing settings, and the W3C trace context written into events and read back from events or headers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from pydantic import ValidationError

from cli.publishing import with_trace_attributes
from infra.settings import Settings, load_settings
from infra.telemetry import (
    JsonLinesSpanExporter,
    context_from,
    current_trace_headers,
    span_exporter,
    with_trace_context,
)
from tests.helpers import as_sent_by_producer

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def local_tracer() -> trace.Tracer:
    return TracerProvider().get_tracer("test")  # not installed globally: each test keeps its own


def test_event_gets_the_current_span_as_its_traceparent() -> None:
    event: dict[str, Any] = {"id": "e-1", "traceparent": "stale", "tracestate": "old=1"}
    with local_tracer().start_as_current_span("publish") as span:
        with_trace_context(event)
    ids = span.get_span_context()
    version, trace_id, span_id, flags = event["traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", f"{ids.trace_id:032x}", f"{ids.span_id:016x}")
    assert int(flags, 16) & 1  # sampled
    assert "tracestate" not in event  # the stale one is not carried over
    assert event["id"] == "e-1"


def test_without_a_span_nothing_is_written() -> None:
    event: dict[str, Any] = {"id": "e-1"}
    with_trace_context(event)
    assert event == {"id": "e-1"} and current_trace_headers() == {}


def test_the_event_attribute_wins_over_message_headers() -> None:
    other = "00-11111111111111111111111111111111-2222222222222222-01"
    ctx = context_from({"traceparent": PARENT, "tracestate": "vn=1"}, {"ce-traceparent": other})
    parent = trace.get_current_span(ctx).get_span_context()
    assert (parent.trace_id, parent.span_id, parent.is_remote) == (0x0af7651916cd43dd8448eb211c80319c,
                                                                   0xb7ad6b7169203331, True)
    assert parent.trace_state.get("vn") == "1"


def test_binary_mode_headers_are_read_when_the_event_has_none() -> None:
    ctx = context_from({"id": "e-1"}, {"ce-traceparent": PARENT})
    assert trace.get_current_span(ctx).get_span_context().span_id == 0xb7ad6b7169203331


@pytest.mark.parametrize("carrier", [{}, {"traceparent": "garbage"}, {"traceparent": 7},
                                     {"traceparent": "00-00000000000000000000000000000000-b7ad6b7169203331-01"}])
def test_missing_or_invalid_traceparent_gives_no_parent(carrier: dict[str, Any]) -> None:
    assert context_from(carrier, None) is None


def test_a_span_continues_the_extracted_parent() -> None:
    with local_tracer().start_as_current_span("process", context=context_from({"traceparent": PARENT})) as span:
        pass
    assert span.parent is not None and span.parent.span_id == 0xb7ad6b7169203331  # type: ignore[attr-defined]
    assert span.get_span_context().trace_id == 0x0af7651916cd43dd8448eb211c80319c


def test_exporter_by_setting(tmp_path: Path) -> None:
    assert span_exporter(Settings(TRACING="off")) is None
    assert isinstance(span_exporter(Settings(TRACING="console")), ConsoleSpanExporter)
    otlp = span_exporter(Settings(TRACING="otlp", OTLP_ENDPOINT="http://collector:4318/v1/traces"))
    assert isinstance(otlp, OTLPSpanExporter)
    file_exporter = span_exporter(Settings(TRACING="file", LIFEEVENTS_DATA_DIR=tmp_path))
    assert isinstance(file_exporter, JsonLinesSpanExporter)
    file_exporter.shutdown()
    assert (tmp_path / "traces.jsonl").exists()


def test_unknown_tracing_value_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError) as caught:
        load_settings(TRACING="jaeger")
    assert "TRACING" in str(caught.value) and "otlp" in str(caught.value)


def test_file_exporter_writes_one_json_line_per_span(tmp_path: Path) -> None:
    path = tmp_path / "spans" / "t.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner"):
        pass
    provider.shutdown()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["name"] for line in lines] == ["inner", "outer"]
    assert lines[0]["parent_id"] == lines[1]["context"]["span_id"]


def test_publisher_puts_the_trace_context_in_front_and_keeps_the_producers_bytes() -> None:
    raw = '{"id": "e-1", "data": {"full_name": "Lê Thị Mai"}}'.encode()
    with local_tracer().start_as_current_span("publish"):
        sent = with_trace_attributes(raw, json.loads(raw))
        headers = current_trace_headers()
    assert json.loads(sent) == {**json.loads(raw), **headers}
    assert sent.endswith(raw[1:]) and as_sent_by_producer(sent) == raw
    with local_tracer().start_as_current_span("publish"):
        assert json.loads(with_trace_attributes(b" {}", {})) == current_trace_headers()


def test_publisher_replaces_a_trace_context_the_event_brought() -> None:
    event = {"id": "e-1", "traceparent": PARENT}
    with local_tracer().start_as_current_span("publish", context=context_from(event)):
        sent = json.loads(with_trace_attributes(json.dumps(event).encode(), dict(event)))
        mine = current_trace_headers()["traceparent"]
    assert sent == {"id": "e-1", "traceparent": mine} and mine.split("-")[1] == PARENT.split("-")[1]


def test_without_a_span_the_publisher_sends_the_bytes_unchanged() -> None:
    raw = b'{"id": "e-1"}'
    assert with_trace_attributes(raw, json.loads(raw)) is raw
