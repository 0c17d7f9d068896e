"""CPU time (user + system) of each part of the bench's stack over a measured window, from /proc.

A part is a set of processes found anew at every sample: a process and its descendants
(gunicorn's master and workers, Celery's main process and its pool, a redis-server), or the
PostgreSQL backends serving one database (``pg_stat_activity``). Backends and pool processes come
and go, so membership is sampled through the window: a process present when the window opens
counts from its ticks then, one that appears later counts from zero (it was born inside the
window), and each counts up to its last sample. What a process spends between its last sample
and its exit, and a backend that lives and dies between two samples, are not counted.
"""
from __future__ import annotations

import math
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

#: The processes of one part, chosen from this sample's ``pid -> ppid``.
Members = Callable[[Mapping[int, int]], Iterable[int]]


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    ticks: int


def parse_stat(text: str) -> ProcStat:
    """``/proc/PID/stat``: the name (field 2) is in parentheses and may hold spaces and ')', so the
    fields are counted from the last ')'; utime and stime (14, 15) already sum the threads."""
    pid = int(text[:text.index(" ")])
    fields = text[text.rindex(")") + 2:].split()
    return ProcStat(pid=pid, ppid=int(fields[1]), ticks=int(fields[11]) + int(fields[12]))


def read_stats() -> dict[int, ProcStat]:
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as file:
                    stat = parse_stat(file.read())
            except (OSError, ValueError, IndexError):
                continue
            stats[stat.pid] = stat
    return stats


def descendants(root: int, parents: Mapping[int, int]) -> set[int]:
    """``root`` and every process below it, if ``root`` is alive."""
    children = defaultdict(list)
    for pid, ppid in parents.items():
        children[ppid].append(pid)
    found, pending = set(), [root] if root in parents else []
    while pending:
        pid = pending.pop()
        found.add(pid)
        pending.extend(child for child in children[pid] if child not in found)
    return found


def process_tree(root: int) -> Members:
    return lambda parents: descendants(root, parents)


@dataclass
class Window:
    """Ticks per pid of one part: at the window's start (0 for a pid born after it) and at its last sample."""

    first: dict[int, int] = field(default_factory=dict)
    last: dict[int, int] = field(default_factory=dict)

    def observe(self, ticks: Mapping[int, int], opening: bool = False) -> None:
        for pid, value in ticks.items():
            self.first.setdefault(pid, value if opening else 0)
            self.last[pid] = value

    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last) / CLOCK_TICKS


class PostgresBackends:
    """The pids of the backends connected to one database, autovacuum workers included; the query
    runs on a connection to another database, so it is not counted itself."""

    def __init__(self, admin_dsn: str, database: str):
        import psycopg2

        self.connection = psycopg2.connect(admin_dsn)
        self.connection.autocommit = True
        self.database = database

    def __call__(self, parents: Mapping[int, int]) -> set[int]:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,))
            return {pid for (pid,) in cursor.fetchall()}

    def close(self) -> None:
        self.connection.close()


class CpuMeter:
    """``with CpuMeter(parts) as meter: ...``, then ``meter.seconds()``: CPU seconds per part over the block."""

    def __init__(self, parts: Mapping[str, Members], interval_s: float = 0.25):
        self.parts = dict(parts)
        self.windows = {name: Window() for name in self.parts}
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)

    def sample(self, opening: bool = False) -> None:
        stats = read_stats()
        parents = {pid: stat.ppid for pid, stat in stats.items()}
        for name, members in self.parts.items():
            self.windows[name].observe({pid: stats[pid].ticks for pid in members(parents) if pid in stats}, opening)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> CpuMeter:
        self.sample(opening=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        for members in self.parts.values():
            if hasattr(members, "close"):
                members.close()

    def seconds(self) -> dict[str, float]:
        return {name: window.seconds() for name, window in self.windows.items()}


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least ``fraction`` of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


def per_job_ms(seconds: Mapping[str, float], jobs: int) -> dict[str, float]:
    """CPU ms per completed job of each part, and their ``total``."""
    if not jobs:
        return {**{name: float("nan") for name in seconds}, "total": float("nan")}
    figures = {name: value * 1000 / jobs for name, value in seconds.items()}
    return {**figures, "total": sum(figures.values())}


def format_per_job(figures: Mapping[str, float]) -> str:
    return "CPU per job: " + ", ".join(f"{name} {value:.2f} ms" for name, value in figures.items())


@dataclass(frozen=True)
class Figures:
    """One measured window: completed jobs per second, latency as the clients saw it (None where
    the bench times a whole batch instead), CPU ms per job of each part and the total."""

    rate: float
    cpu_ms: dict[str, float]
    p50_ms: float | None = None
    p99_ms: float | None = None

    def line(self, unit: str = "jobs") -> str:
        latency = "" if self.p50_ms is None else f", p50 {self.p50_ms:.0f} ms, p99 {self.p99_ms:.0f} ms"
        return f"{self.rate:7.1f} {unit}/s{latency}; {format_per_job(self.cpu_ms)}"


def window_figures(latencies_s: list[float], duration_s: float, cpu_seconds: Mapping[str, float]) -> Figures:
    """Figures of the jobs that finished inside a window of ``duration_s`` (their submit-to-result times)."""
    milliseconds = [value * 1000 for value in latencies_s]
    return Figures(rate=len(latencies_s) / duration_s, cpu_ms=per_job_ms(cpu_seconds, len(latencies_s)),
                   p50_ms=percentile(milliseconds, 0.5), p99_ms=percentile(milliseconds, 0.99))
