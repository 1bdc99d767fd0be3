"""The service's Prometheus metrics, and the Temporal SDK's metrics folded into the same registry.

One endpoint per process holds both: the Temporal core records into a `MetricBuffer` (a Runtime of this
module's making), which `TemporalMetricsCollector` drains and accumulates; a scrape shows the totals. The
alternative, Temporal's own Prometheus listener, would be a second port per process to configure and scrape.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

EVENTS_RECEIVED = Counter("lifeevents_events_received", "Events the bridge took from NATS", ["type"])
EVENTS_PROCESSED = Counter("lifeevents_events_processed", "Events handled and acknowledged", ["type"])
EVENTS_DEAD_LETTERED = Counter("lifeevents_events_dead_lettered", "Events moved to the dead-letter stream",
                               ["type"])
EVENTS_RETRIED = Counter("lifeevents_events_retried", "Events handed back to NATS for a later redelivery",
                         ["type"])
STEP_DURATION = Histogram("lifeevents_stage_duration_seconds", "One attempt of an agency step (activity)",
                          ["step", "outcome"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
NOTICES = Counter("lifeevents_notices", "Notices to families by outcome: sent (new), resent (a retry found it), "
                  "withheld (the citizen's death is recorded)", ["outcome"])
NOTICE_DISPATCHES = Counter("lifeevents_notice_dispatches",
                            "Notice announcements the dispatcher took, by outcome: pushed (first time), "
                            "repeat (pushed before: not again), retried, dead-lettered", ["outcome"])
LEDGER_WRITES = Counter("lifeevents_ledger_writes", "Data-access ledger entries committed", ["agency"])

OTHER_EVENT_TYPE = "other"
"""Label for event types without a handler: the type is sender-supplied, so it never becomes a label value."""


def event_type_label(event_type: object, known: Iterable[str]) -> str:
    return event_type if isinstance(event_type, str) and event_type in known else OTHER_EVENT_TYPE


# ---- Temporal SDK metrics ---------------------------------------------------------------------------------
TEMPORAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
Labels = tuple[tuple[str, str], ...]


@dataclass
class _Series:
    kind: str
    description: str
    values: dict[Labels, float] = field(default_factory=dict)
    buckets: dict[Labels, list[float]] = field(default_factory=dict)
    sums: dict[Labels, float] = field(default_factory=dict)


class TemporalMetricsCollector(Collector):
    """Accumulates the updates of a Temporal `MetricBuffer` (counter deltas, gauge values, histogram
    observations in seconds) and presents them as Prometheus families named `temporal_*`."""

    def __init__(self, drain: Any) -> None:
        self._drain = drain
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}

    def absorb(self, updates: Sequence[Any] | None = None) -> None:
        """Fold pending updates into the totals (called on each scrape and periodically, so the buffer never
        fills)."""
        with self._lock:
            for update in self._drain() if updates is None else updates:
                self._fold(update)

    def _fold(self, update: Any) -> None:
        metric = update.metric
        name = metric.name if metric.name.startswith("temporal_") else f"temporal_{metric.name}"
        kind = ("counter" if metric.kind == BUFFERED_METRIC_KIND_COUNTER
                else "gauge" if metric.kind == BUFFERED_METRIC_KIND_GAUGE else "histogram")
        series = self._series.setdefault(name, _Series(kind, metric.description or name))
        labels: Labels = tuple(sorted((str(k), str(v)) for k, v in update.attributes.items()))
        value = float(update.value)
        if kind == "counter":
            series.values[labels] = series.values.get(labels, 0.0) + value
        elif kind == "gauge":
            series.values[labels] = value
        else:
            counts = series.buckets.setdefault(labels, [0.0] * (len(TEMPORAL_BUCKETS) + 1))
            counts[bisect.bisect_left(TEMPORAL_BUCKETS, value)] += 1
            series.sums[labels] = series.sums.get(labels, 0.0) + value

    def collect(self) -> Iterator[Metric]:
        self.absorb()
        with self._lock:
            for name, series in sorted(self._series.items()):
                yield from _families(name, series)


def _families(name: str, series: _Series) -> Iterator[Metric]:
    label_names = sorted({k for labels in (*series.values, *series.buckets) for k, _ in labels})

    def values_of(labels: Labels) -> list[str]:
        given: Mapping[str, str] = dict(labels)
        return [given.get(k, "") for k in label_names]

    if series.kind == "counter":
        counter = CounterMetricFamily(name, series.description, labels=label_names)
        for labels, value in series.values.items():
            counter.add_metric(values_of(labels), value)
        yield counter
    elif series.kind == "gauge":
        gauge = GaugeMetricFamily(name, series.description, labels=label_names)
        for labels, value in series.values.items():
            gauge.add_metric(values_of(labels), value)
        yield gauge
    else:
        histogram = HistogramMetricFamily(name, series.description, labels=label_names)
        for labels, counts in series.buckets.items():
            cumulative, running = [], 0.0
            for bound, count in zip([*map(floatToGoString, TEMPORAL_BUCKETS), "+Inf"], counts, strict=True):
                running += count
                cumulative.append((bound, running))
            histogram.add_metric(values_of(labels), cumulative, series.sums[labels])
        yield histogram


@dataclass(frozen=True)
class TemporalMetrics:
    runtime: Runtime
    collector: TemporalMetricsCollector


@cache
def temporal_metrics() -> TemporalMetrics:
    """The process's Temporal Runtime recording into a buffer, and its collector in the default registry.

    Created once per process (a Runtime owns native threads); clients that should be measured connect with
    `runtime=temporal_metrics().runtime`.
    """
    buffer = MetricBuffer(100_000, duration_format=MetricBufferDurationFormat.SECONDS)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    collector = TemporalMetricsCollector(buffer.retrieve_updates)
    REGISTRY.register(collector)
    return TemporalMetrics(runtime, collector)
