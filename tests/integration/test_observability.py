"""One trace per event from `publish` to the last notice; the operator endpoint's metrics and readiness."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from events.birth_registered import BIRTH_REGISTERED
from infra.health import http_get
from infra.nats_identities import NOTIFIER
from infra.settings import Settings
from infra.stack import EmbeddedStack, free_port
from starter import publish_raw
from tests.helpers import eventually
from tests.integration.test_birth_end_to_end import ALL_STAGES, birth_event, wait_all_stages
from workflows.client import birth_workflow_id
from workflows.contracts import BIRTH_AT_ONCE

pytestmark = pytest.mark.integration


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _attrs(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def _named(spans: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


async def test_one_birth_is_one_trace_from_publish_to_the_last_notice(settings: Settings, service: Any,
                                                                      span_recorder: Any) -> None:
    reg, raw = birth_event(377)
    stage_steps = {f"RunActivity:{BIRTH_AT_ONCE}"}  # every stage with its notice, and the hand-over, in one step
    every_step = stage_steps
    with span_recorder.recording() as exporter:
        [published] = await publish_raw(settings, [raw], progress=False)
        await wait_all_stages(service, [reg])
        workflow_id = birth_workflow_id(published["subject"].split(".")[1], reg)

        def notices_in(spans: list[ReadableSpan]) -> list[ReadableSpan]:
            return [s for s in _named(spans, "publish notify.inbox")
                    if any(a.context.span_id == _parent(s) and _attrs(a).get("temporalWorkflowID") == workflow_id
                           for a in spans)]

        async def finished() -> list[ReadableSpan]:
            return list(exporter.get_finished_spans())

        def steps_ended(spans: list[ReadableSpan]) -> set[str]:
            return {s.name for s in _named(spans, "RunActivity:") if _attrs(s).get("temporalWorkflowID") == workflow_id}

        def unfinished_parents(spans: list[ReadableSpan]) -> int:
            """Spans of this trace whose parent has not ended yet (e.g. the SQL of the lifecycle's first step, the
            hand-over having carried the trace on); zero once everything has ended, as no orphan is left then."""
            roots = [s for s in spans if s.name == f"publish {BIRTH_REGISTERED}"]
            traces = {s.context.trace_id for s in roots}
            ended = {s.context.span_id for s in spans}
            return sum(1 for s in spans if s.context.trace_id in traces and s.parent and _parent(s) not in ended)

        # the notices' rows are committed before their spans end (and before the span of the step that sent them,
        # and the hand-over after them): wait for every notice span, every step's span, every parent span
        spans = await eventually(finished, lambda got: len(notices_in(got)) >= ALL_STAGES
                                 and steps_ended(got) >= every_step and unfinished_parents(got) == 0, within=15,
                                 what="notice spans, the spans of every step and their parents")

    [publish] = [s for s in spans if s.name == f"publish {BIRTH_REGISTERED}"
                 and _attrs(s).get("messaging.destination.name") == published["subject"]]
    assert publish.kind is SpanKind.PRODUCER and publish.parent is None
    trace_id = publish.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    by_id = {s.context.span_id: s for s in in_trace}

    # Everything this birth caused, found by its workflow id, belongs to the publish span's trace.
    of_workflow = [s for s in spans if _attrs(s).get("temporalWorkflowID") == workflow_id]
    assert of_workflow and {s.context.trace_id for s in of_workflow} == {trace_id}

    # NATS hop: the bridge's consumer span is the publish span's child, and starts the workflow.
    [bridge] = [s for s in in_trace if s.name == f"process {BIRTH_REGISTERED}"]
    assert bridge.kind is SpanKind.CONSUMER and _parent(bridge) == publish.context.span_id
    assert _attrs(bridge)["lifeevents.outcome"] == "processed"
    [start] = [s for s in in_trace if s.name == "StartWorkflow:BirthRegistrationWorkflow"]
    assert _parent(start) == bridge.context.span_id
    # Temporal hop: the workflow run continues from the client's start; each activity from its scheduling.
    [run] = [s for s in in_trace if s.name == "RunWorkflow:BirthRegistrationWorkflow"]
    assert _parent(run) == start.context.span_id
    activities = [s for s in _named(in_trace, "RunActivity:") if _attrs(s)["temporalWorkflowID"] == workflow_id]
    assert {s.name for s in activities} == every_step
    for activity in activities:
        scheduled = by_id[_parent(activity)]  # type: ignore[index]
        assert scheduled.name == "StartActivity:" + activity.name.split(":", 1)[1]
        # temporalio parents the workflow's outbound spans on the context the start carried (the run span is
        # their sibling); either is a link back to this workflow's start
        assert _parent(scheduled) in {start.context.span_id, run.context.span_id}
    # Inside activities: SQL statements (operation only, never the text or the values) and the notices.
    activity_ids = {s.context.span_id for s in activities}
    sql = [s for s in in_trace if _attrs(s).get("db.system") == "postgresql" and _parent(s) in activity_ids]
    assert {s.name for s in sql} >= {"SELECT", "INSERT"}
    assert all(set(_attrs(s)) == {"db.system", "db.name", "db.operation"} for s in sql)
    # A new registration's one transaction reads back nothing it wrote, and asks no "done already?" of the child it
    # has just recorded: it reads the registration (locked), both parents, the citizen for the notices (once), the
    # household and its address.
    selects = [s for s in sql if s.name == "SELECT"]
    assert len(selects) <= 5, f"{len(selects)} SELECTs in the all-stages step"
    notices = notices_in(in_trace)
    assert len(notices) == ALL_STAGES
    assert {by_id[_parent(n)].name for n in notices} == stage_steps  # type: ignore[index]
    # No orphans: every span but the root has its parent in the trace.
    orphans = [s.name for s in in_trace if s is not publish and _parent(s) not in by_id]
    assert orphans == []


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_metrics_endpoint_counts_a_birth_and_shows_temporal_metrics(settings: Settings, service: Any) -> None:
    notices = ("lifeevents_notices_total", (("outcome", "sent"),))
    async with service.operator_endpoint(0) as port:
        async def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            status, body = await http_get("127.0.0.1", port, "/metrics")
            assert status == 200
            return _samples(body.decode())

        def grew(name: str, **labels: str) -> float:
            key = (name, tuple(sorted(labels.items())))
            return after.get(key, 0.0) - before.get(key, 0.0)

        before = after = await scrape()
        reg, raw = birth_event(389)
        await publish_raw(settings, [raw], progress=False)
        await wait_all_stages(service, [reg])
        def completed(seen: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
            return sum(v for (name, _), v in seen.items() if name == "temporal_workflow_completed_total")

        # every notice counted, and the birth workflow completed (its hand-over to the lifecycle comes after them)
        after = await eventually(scrape, lambda seen: seen.get(notices, 0) - before.get(notices, 0) >= ALL_STAGES
                                 and completed(seen) > completed(before), within=30,
                                 what="every notice counted and the workflow completed")
        assert (await http_get("127.0.0.1", port, "/healthz"))[0] == 200
        ready_status, ready = await http_get("127.0.0.1", port, "/readyz")

    birth = {"type": BIRTH_REGISTERED}
    assert grew("lifeevents_events_received_total", **birth) >= 1
    assert grew("lifeevents_events_processed_total", **birth) >= 1
    assert grew("lifeevents_notices_total", outcome="sent") >= ALL_STAGES
    assert grew("lifeevents_ledger_writes_total", agency="notification") >= ALL_STAGES
    assert grew("lifeevents_stage_duration_seconds_count", step="record_birth", outcome="done") >= 1
    assert grew("lifeevents_stage_duration_seconds_count", step="notify_family", outcome="done") >= ALL_STAGES
    assert grew("lifeevents_stage_duration_seconds_count", step=BIRTH_AT_ONCE, outcome="done") >= 1
    temporal = {name: value for (name, _), value in after.items() if name.startswith("temporal_")}
    assert temporal.get("temporal_workflow_completed_total", 0) > 0, sorted(temporal)
    assert temporal.get("temporal_local_activity_execution_latency_count", 0) > 0, sorted(temporal)  # the steps
    assert ready_status == 200, ready
    assert json.loads(ready) == {"status": "ready", "down": [],
                                 "checks": {"nats": "ok", "temporal": "ok", "database": "ok"}}


async def test_readyz_names_nats_while_it_is_down(settings: Settings, service: Any, tmp_path: Any) -> None:
    import worker

    own = Settings(LIFEEVENTS_DATA_DIR=tmp_path, NATS_PORT=free_port(), NATS_URL=None,
                   TEMPORAL_ADDRESS=settings.temporal_address, DATABASE_URL=settings.database_url)
    own_nats = EmbeddedStack(own, headless_ui=True)
    await asyncio.to_thread(own_nats.start)
    nc = await worker.connect_nats(own, NOTIFIER)
    try:
        svc = dataclasses.replace(service, nc=nc, js=nc.jetstream())

        async with svc.operator_endpoint(0) as port:
            async def readyz() -> tuple[int, dict[str, Any]]:
                status, body = await http_get("127.0.0.1", port, "/readyz")
                return status, json.loads(body)

            assert (await readyz())[0] == 200
            await asyncio.to_thread(own_nats.stop)
            status, body = await eventually(readyz, lambda r: r[0] == 503, within=15, what="/readyz 503")
            assert body["down"] == ["nats"] and body["status"] == "not ready"
            assert body["checks"]["temporal"] == body["checks"]["database"] == "ok"
            assert (await http_get("127.0.0.1", port, "/healthz"))[0] == 200  # alive, just not ready
            await asyncio.to_thread(own_nats.start)
            await eventually(readyz, lambda r: r[0] == 200, within=30, what="/readyz 200 after NATS is back")
    finally:
        await nc.close()
        await asyncio.to_thread(own_nats.stop)
