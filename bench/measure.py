"""What the benchmark measures besides time: CPU seconds of the processes involved, their memory, percentiles."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0–100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def pid_from_file(path: Path) -> int | None:
    """The pid on the first line of a pid file (`<data>/run/*.pid`, PostgreSQL's `postmaster.pid`)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tree(pid: int | None) -> list[psutil.Process]:
    """The process and its descendants (PostgreSQL forks one backend per connection)."""
    if pid is None:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_seconds(processes: Iterable[psutil.Process]) -> dict[int, float]:
    seen: dict[int, float] = {}
    for proc in processes:
        try:
            times = proc.cpu_times()
            seen[proc.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return seen


@dataclass
class CpuMeter:
    """CPU seconds spent by named groups of process trees between `start()` and `stop()`.

    A process that exits between the two readings is missed (short-lived PostgreSQL backends); the pool keeps
    its connections, so in practice the backends live through a run.
    """

    groups: dict[str, list[int | None]]
    recursive: set[str]
    """Groups whose descendants count too (a server and its forks, not the benchmark's own child servers)."""

    def _processes(self, name: str) -> list[psutil.Process]:
        found: list[psutil.Process] = []
        for pid in self.groups[name]:
            found += _tree(pid) if name in self.recursive else _tree(pid)[:1]
        return found

    def _read(self) -> dict[str, dict[int, float]]:
        return {name: _cpu_seconds(self._processes(name)) for name in self.groups}

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        return {name: sum(cpu - self._before[name].get(pid, 0.0) for pid, cpu in after[name].items())
                for name in self.groups}


def rss_mib(pids: Iterable[int]) -> float:
    """Resident memory of the given processes (not their children), in MiB."""
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20
