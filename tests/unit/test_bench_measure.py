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
