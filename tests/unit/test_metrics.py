"""The Temporal SDK's buffered metric updates folded into Prometheus families; the event-type label."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BUFFERED_METRIC_KIND_HISTOGRAM,
    BufferedMetricKind,
)

from infra.metrics import OTHER_EVENT_TYPE, TemporalMetricsCollector, event_type_label


@dataclass(frozen=True)
class FakeMetric:
    name: str
    kind: BufferedMetricKind
    description: str | None = None
    unit: str | None = None


@dataclass
class FakeUpdate:
    metric: FakeMetric
    value: float
    attributes: dict[str, Any] = field(default_factory=dict)


COMPLETED = FakeMetric("temporal_workflow_completed", BUFFERED_METRIC_KIND_COUNTER, "Workflows completed")
SLOTS = FakeMetric("worker_task_slots_available", BUFFERED_METRIC_KIND_GAUGE)
LATENCY = FakeMetric("temporal_activity_execution_latency", BUFFERED_METRIC_KIND_HISTOGRAM)


def scrape(updates: list[list[FakeUpdate]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Each inner list is what one drain of the buffer returns."""
    pending = list(updates)
    collector = TemporalMetricsCollector(lambda: pending.pop(0) if pending else [])
    registry = CollectorRegistry()
    registry.register(collector)
    for _ in range(len(updates) - 1):
        collector.absorb()
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_counters_add_up_across_drains_per_label_set() -> None:
    a, b = {"workflow_type": "Birth"}, {"workflow_type": "Death"}
    got = scrape([[FakeUpdate(COMPLETED, 1, a), FakeUpdate(COMPLETED, 2, b)], [FakeUpdate(COMPLETED, 3, a)]])
    assert got[("temporal_workflow_completed_total", (("workflow_type", "Birth"),))] == 4
    assert got[("temporal_workflow_completed_total", (("workflow_type", "Death"),))] == 2


def test_gauges_keep_the_last_value_and_names_get_the_temporal_prefix() -> None:
    got = scrape([[FakeUpdate(SLOTS, 5)], [FakeUpdate(SLOTS, 3)]])
    assert got[("temporal_worker_task_slots_available", ())] == 3


def test_histograms_count_sum_and_cumulative_buckets() -> None:
    got = scrape([[FakeUpdate(LATENCY, 0.02), FakeUpdate(LATENCY, 0.3), FakeUpdate(LATENCY, 120)]])
    assert got[("temporal_activity_execution_latency_count", ())] == 3
    assert abs(got[("temporal_activity_execution_latency_sum", ())] - 120.32) < 1e-9
    assert got[("temporal_activity_execution_latency_bucket", (("le", "0.025"),))] == 1
    assert got[("temporal_activity_execution_latency_bucket", (("le", "0.5"),))] == 2
    assert got[("temporal_activity_execution_latency_bucket", (("le", "60.0"),))] == 2
    assert got[("temporal_activity_execution_latency_bucket", (("le", "+Inf"),))] == 3


def test_label_sets_that_differ_in_keys_share_one_family() -> None:
    got = scrape([[FakeUpdate(COMPLETED, 1, {"a": "x"}), FakeUpdate(COMPLETED, 1, {"b": "y"})]])
    assert got[("temporal_workflow_completed_total", (("a", "x"), ("b", "")))] == 1
    assert got[("temporal_workflow_completed_total", (("a", ""), ("b", "y")))] == 1


def test_event_type_label_never_echoes_an_unknown_type() -> None:
    known = {"vn.gov.civil.birth.registered"}
    assert event_type_label("vn.gov.civil.birth.registered", known) == "vn.gov.civil.birth.registered"
    assert event_type_label("Nguyen Van A", known) == OTHER_EVENT_TYPE
    assert event_type_label(None, known) == OTHER_EVENT_TYPE
