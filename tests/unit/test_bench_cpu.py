"""The benches' CPU accounting (bench/cpu.py) and bench/compare.py's summary."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from bench.compare import median_figures, ratio, summary_table
from bench.cpu import (
    CLOCK_TICKS,
    CpuMeter,
    Figures,
    Window,
    descendants,
    parse_stat,
    per_job_ms,
    percentile,
    process_tree,
    read_stats,
    window_figures,
)

STAT = ("4242 (celery: worker) S) R 17 4242 4242 0 -1 4194560 9071 0 0 0 "
        "311 57 4 2 20 0 3 0 1234 987654 321 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0")


def test_stat_fields_are_counted_from_the_last_parenthesis():
    stat = parse_stat(STAT)
    assert (stat.pid, stat.ppid, stat.ticks) == (4242, 17, 311 + 57)


def test_this_process_reads_as_itself():
    stats = read_stats()
    assert stats[os.getpid()].ppid == os.getppid()


def test_a_tree_is_its_root_and_everything_below_it():
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 11, 20: 1, 21: 20}
    assert descendants(10, parents) == {10, 11, 12, 13}
    assert descendants(13, parents) == {13}
    assert descendants(99, parents) == set()


def test_a_window_counts_from_its_opening_and_a_newcomer_from_zero():
    window = Window()
    window.observe({1: 500, 2: 40}, opening=True)
    window.observe({1: 550, 2: 45, 3: 7})
    window.observe({1: 600, 3: 20})
    assert window.seconds() == pytest.approx((100 + 5 + 20) / CLOCK_TICKS)


def test_percentile_is_the_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([7.0], 0.99) == 7.0
    assert percentile(reversed(values), 1.0) == 100
    assert math.isnan(percentile([], 0.5))


def test_cpu_per_job_in_ms_per_part_and_in_total():
    figures = per_job_ms({"API": 0.5, "worker": 1.5}, 200)
    assert figures == pytest.approx({"API": 2.5, "worker": 7.5, "total": 10.0})
    assert all(math.isnan(value) for value in per_job_ms({"API": 0.5}, 0).values())


def test_window_figures_line():
    figures = window_figures([0.010, 0.020, 0.030, 0.400], 2.0, {"API": 0.004, "Redis": 0.0})
    assert (figures.rate, figures.p50_ms, figures.p99_ms) == (2.0, 20.0, 400.0)
    assert figures.line() == ("    2.0 jobs/s, p50 20 ms, p99 400 ms; "
                              "CPU per job: API 1.00 ms, Redis 0.00 ms, total 1.00 ms")
    assert Figures(rate=5.0, cpu_ms={"total": 1.0}).line("texts") == "    5.0 texts/s; CPU per job: total 1.00 ms"


def test_a_meter_sees_the_cpu_a_child_spent_in_its_window():
    """A child that burns a known amount of its own CPU time, then waits: the meter of its tree
    reads at least that much (ticks are 1/CLOCK_TICKS s), whatever the wall time it took."""
    burn = ("import sys, time\nsys.stdin.readline()\nstart = time.process_time()\n"
            "while time.process_time() - start < 0.3:\n    pass\nprint('done', flush=True)\nsys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        with CpuMeter({"child": process_tree(child.pid), "nobody": lambda parents: []}, interval_s=0.05) as meter:
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "done\n"
        seconds = meter.seconds()
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    assert seconds["child"] >= 0.3 - 2 / CLOCK_TICKS
    assert seconds["nobody"] == 0


def test_medians_ratios_and_the_summary_table():
    runs = [Figures(rate=10.0, cpu_ms={"API": 2.0, "total": 4.0}, p50_ms=30.0, p99_ms=90.0),
            Figures(rate=14.0, cpu_ms={"API": 4.0, "total": 8.0}, p50_ms=50.0, p99_ms=70.0)]
    old = median_figures(runs)
    assert (old.rate, old.cpu_ms, old.p50_ms, old.p99_ms) == (12.0, {"API": 3.0, "total": 6.0}, 40.0, 80.0)
    new = Figures(rate=18.0, cpu_ms={"API": 1.5, "total": 3.0}, p50_ms=20.0, p99_ms=80.0)
    assert ratio(18.0, 12.0) == "1.50" and ratio(None, 12.0) == "-" and ratio(1.0, 0.0) == "-"
    table = summary_table("concurrent", ("old a", "new b"), old, new, "jobs").splitlines()
    assert table[0].split() == ["concurrent", "old", "a", "new", "b", "new/old"]
    assert [line.split() for line in table[1:]] == [
        ["jobs/s", "12.00", "18.00", "1.50"], ["p50", "ms", "40.00", "20.00", "0.50"],
        ["p99", "ms", "80.00", "80.00", "1.00"], ["CPU/job", "API", "ms", "3.00", "1.50", "0.50"],
        ["CPU/job", "total", "ms", "6.00", "3.00", "0.50"]]


def test_a_bulk_summary_has_no_latency_rows():
    old = median_figures([Figures(rate=100.0, cpu_ms={"total": 2.0})])
    table = summary_table("bulk", ("old", "new"), old, old, "texts")
    assert "p99" not in table and "texts/s" in table
