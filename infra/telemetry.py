"""Tracing: the TracerProvider chosen by settings, W3C trace context in events and messages, database spans.

One trace per event: `starter.py publish` opens the root span and writes its `traceparent` into the CloudEvent
(the CloudEvents distributed-tracing extension); the bridge continues it, temporalio's TracingInterceptor carries
it through the workflow into every activity (Temporal headers), the activities' SQL statements and the notices'
NATS messages are spans of their own inside it. Spans carry names and ids only, never personal data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import IO, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.settings import Settings

log = logging.getLogger("lifeevents.telemetry")
TRACER_NAME = "lifeevents"
TRACE_ATTRIBUTES = ("traceparent", "tracestate")
"""The CloudEvents distributed-tracing extension attributes (W3C Trace Context)."""
_W3C = TraceContextTextMapPropagator()
_SPAN_KEY = "lifeevents.sql_span"


def tracer() -> trace.Tracer:
    """The service's tracer; follows whichever provider is installed globally (also one installed later)."""
    return trace.get_tracer(TRACER_NAME)


class JsonLinesSpanExporter(SpanExporter):
    """Each finished span as one JSON line in a file, for local inspection without a collector."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out: IO[str] = path.open("a", encoding="utf-8")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            self._out.write(json.dumps(json.loads(span.to_json()), separators=(",", ":")) + "\n")
        self._out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._out.close()


def span_exporter(settings: Settings) -> SpanExporter | None:
    if settings.tracing == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.otlp_endpoint)
    if settings.tracing == "console":
        return ConsoleSpanExporter()
    if settings.tracing == "file":
        return JsonLinesSpanExporter(settings.traces_path)
    return None


def configure_tracing(settings: Settings, service_name: str) -> TracerProvider | None:
    """Install the process's TracerProvider from settings (TRACING=off: none, the no-op API still propagates
    `traceparent`). The caller shuts the provider down at exit so the last spans are flushed."""
    exporter = span_exporter(settings)
    if exporter is None:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing to %s", settings.otlp_endpoint if settings.tracing == "otlp" else settings.tracing)
    return provider


# ---- trace context in events and messages ---------------------------------------------------------------
def current_trace_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the current span; empty when there is no valid span."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier


def with_trace_context(document: MutableMapping[str, Any]) -> None:
    """Write the current span's trace context into a structured CloudEvent as extension attributes."""
    for name in TRACE_ATTRIBUTES:
        document.pop(name, None)
    document.update(current_trace_headers())


def context_from(*carriers: Mapping[str, Any] | None) -> otel_context.Context | None:
    """The remote parent from the first carrier with a valid `traceparent` (the event's attributes first, then
    `ce-traceparent`/`traceparent` message headers); None when none has one."""
    for carrier in carriers:
        if not carrier:
            continue
        for prefix in ("", "ce-"):
            parent = carrier.get(prefix + "traceparent")
            if not isinstance(parent, str):
                continue
            values = {"traceparent": parent}
            state = carrier.get(prefix + "tracestate")
            if isinstance(state, str):
                values["tracestate"] = state
            ctx = _W3C.extract(values)
            if trace.get_current_span(ctx).get_span_context().is_valid:
                return ctx
    return None


def inject_into(headers: dict[str, str]) -> dict[str, str]:
    """`headers` plus the current trace context (every configured propagator), for a NATS message."""
    propagate.inject(headers)
    return headers


# ---- database spans ---------------------------------------------------------------------------------------
def instrument_engine(engine: AsyncEngine, *, database: str = "lifeevents") -> None:
    """A CLIENT span around each SQL statement, named by its operation (SELECT, INSERT, ...).

    The statement text and its parameters are left out on purpose: parameters hold names and ID numbers. Without
    an SDK TracerProvider (TRACING=off) no span is made at all: a no-op span per statement still cost about 1 % of
    the worker's CPU. The provider is looked up per statement, so one installed later is followed.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _start(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if not isinstance(trace.get_tracer_provider(), TracerProvider):
            return
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        span = tracer().start_span(operation, kind=SpanKind.CLIENT, attributes={
            "db.system": "postgresql", "db.name": database, "db.operation": operation})
        if context is not None:
            context._lifeevents_span = span  # noqa: SLF001 - per-execution scratch space SQLAlchemy provides
        else:
            conn.info[_SPAN_KEY] = span

    def _span_of(conn: Any, context: Any) -> Any:
        span = getattr(context, "_lifeevents_span", None) if context is not None else None
        return span if span is not None else conn.info.pop(_SPAN_KEY, None)

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _end(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        span = _span_of(conn, context)
        if span is not None:
            span.end()

    @event.listens_for(sync_engine, "handle_error")
    def _failed(exception_context: Any) -> None:
        span = _span_of(exception_context.connection, exception_context.execution_context)
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, type(exception_context.original_exception).__name__))
            span.end()
