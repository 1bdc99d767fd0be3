"""The benchmark's own arithmetic: percentiles and CPU accounting per process group."""

from __future__ import annotations

import math
import os
import time

from bench.measure import CpuMeter, percentile


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7
    assert percentile([1.0, 2.0, math.inf], 99) == math.inf  # an unfinished birth counts as never notified
    assert math.isnan(percentile([], 50))


def test_cpu_meter_counts_the_cpu_a_group_spent_and_nothing_for_a_missing_process() -> None:
    meter = CpuMeter({"me": [os.getpid()], "gone": [None]}, recursive=set())
    meter.start()
    end = time.process_time() + 0.2
    while time.process_time() < end:  # burn 0.2 s of CPU in this process
        pass
    spent = meter.stop()
    assert 0.15 <= spent["me"] < 2.0
    assert spent["gone"] == 0


def _results(ours: float, local_before: float, local_after: float) -> dict[str, object]:
    def phase(rate: float) -> dict[str, float]:
        return {"per_second": rate, "history_events": 10, "cpu_service_ms": 50, "cpu_temporal_ms": 20,
                "cpu_postgres_ms": 10, "cpu_nats_ms": 3, "worker_rss_mib": 200, "completed_share": 1.0}

    return {"births": 1000, "cores": 2, "load_at_end": (1.0, 1.0, 1.0), "ours": phase(ours),
            "ceiling activities": phase(8.0), "ceiling local activities": phase(local_before),
            "ceiling local activities, after ours": phase(local_after),
            "ceiling local activities, starts in the clock": phase(20.0), "processes": {},
            "paced": {"rate": ours / 2, "births": 400, **{f"{w}_p{q}_ms": 100.0 for w in ("first", "last")
                                                          for q in (50, 95, 99)}}}


def test_the_table_compares_ours_with_the_mean_of_the_local_ceilings_that_bracket_it() -> None:
    from bench.births_throughput import table

    lines = {line.split("  ")[0]: line for line in table(_results(12.0, 24.0, 16.0)).splitlines()}
    ratio = next(v for k, v in lines.items() if k.startswith("ours / local-activity ceiling"))
    assert ratio.split()[-3:] == ["0.60", "(0.50,", "0.75)"]  # 12 / mean(24, 16); 12 / 24; 12 / 16
    targets = next(v for k, v in lines.items() if k.startswith("targets"))
    assert targets.rstrip().endswith("met / met / met / met")
    slower_after = {line.split("  ")[0]: line for line in table(_results(12.0, 24.0, 24.0)).splitlines()}
    assert next(v for k, v in slower_after.items() if k.startswith("targets")).split("  ")[-1].startswith("NOT met")
