"""Before and after in one run: ``python bench/compare.py --old REV [--new REV|PATH]``.

The old commit (and the new one, when ``--new`` names a commit rather than a folder; default:
this checkout as it is) is checked out in a git worktree in a temporary folder, with this
checkout's ``.venv`` linked in, and removed at the end. Each tree supplies only the server
processes: gunicorn with its own scripts/gunicorn.conf.py, its Celery worker, its Alembic
migrations on a fresh database per run, and the API key made by its own code, beside a fresh
redis-server. The client code is this checkout's for both, so both are driven the same way.

Rounds alternate the trees (old, new, old, new, ...), each bench's old and new runs adjacent, so
a drift of the shared machine's load lands on both. Each run prints the figures of
bench/concurrent.py or bench/bulk.py: jobs (texts) per second, p50 and p99 of a job from
submission to result as its client saw it, and CPU per finished job of the API, the worker,
the database's backends and Redis (bench/cpu.py). At the end, per tree, the median of its
rounds and the ratio new/old of each figure; for bulk also end-to-end texts/s over the raw
model's best of this run (this checkout's model code in this process, before each round's bulk
runs, the faster of its two layouts).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cpu import Figures  # noqa: E402
from bench.stack import ROOT, load_classifier, unique_texts  # noqa: E402

BENCHES = ("concurrent", "bulk")
GOAL_BULK_OF_RAW = 0.9


@dataclass(frozen=True)
class Tree:
    label: str
    root: Path


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def checked_out(rev: str, name: str) -> Iterator[Tree]:
    """``rev`` in a detached worktree in a temporary folder, this checkout's ``.venv`` linked in."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    folder = Path(tempfile.mkdtemp(prefix=f"samo-compare-{name}-"))
    path = folder / "tree"
    git("worktree", "add", "--detach", str(path), commit)
    try:
        (path / ".venv").symlink_to((ROOT / ".venv").resolve())
        yield Tree(label=f"{name} {commit[:7]}", root=path)
    finally:
        git("worktree", "remove", "--force", str(path))
        shutil.rmtree(folder, ignore_errors=True)


def new_tree(stack: ExitStack, new: str | None) -> Tree:
    if new is None:
        dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
        return Tree(label=f"new {git('rev-parse', '--short=7', 'HEAD')}{dirty}", root=ROOT)
    if Path(new).is_dir():
        return Tree(label=f"new {Path(new).resolve()}", root=Path(new).resolve())
    return stack.enter_context(checked_out(new, "new"))


def median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def median_figures(runs: Sequence[Figures]) -> Figures:
    """Each figure the median over the runs, on its own."""
    return Figures(rate=median([run.rate for run in runs]),
                   cpu_ms={name: median([run.cpu_ms[name] for run in runs]) for name in runs[0].cpu_ms},
                   p50_ms=median([run.p50_ms for run in runs]), p99_ms=median([run.p99_ms for run in runs]))


def ratio(new: float | None, old: float | None) -> str:
    return "-" if new is None or not old else f"{new / old:.2f}"


def summary_rows(old: Figures, new: Figures, unit: str) -> list[tuple[str, float | None, float | None]]:
    rows = [(f"{unit}/s", old.rate, new.rate), ("p50 ms", old.p50_ms, new.p50_ms), ("p99 ms", old.p99_ms, new.p99_ms)]
    rows += [(f"CPU/job {name} ms", old.cpu_ms[name], new.cpu_ms[name]) for name in old.cpu_ms]
    return [row for row in rows if row[1] is not None or row[2] is not None]


def summary_table(title: str, labels: tuple[str, str], old: Figures, new: Figures, unit: str) -> str:
    """The two trees' figures side by side and new/old."""
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    width = max(len(label) for label in labels) + 2
    lines = [f"{title:<22}{labels[0]:>{width}}{labels[1]:>{width}}{'new/old':>9}"]
    lines += [f"  {name:<20}{cell(a):>{width}}{cell(b):>{width}}{ratio(b, a):>9}"
              for name, a, b in summary_rows(old, new, unit)]
    return "\n".join(lines)


def load() -> str:
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the commit before")
    parser.add_argument("--new", default=None, help="the commit after, or a folder holding it (default: this checkout)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bench", default=",".join(BENCHES), help="which of concurrent,bulk")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per concurrent run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before a concurrent run's window opens")
    parser.add_argument("--n", type=int, default=3000, help="texts per bulk upload")
    parser.add_argument("--subjects", type=int, default=0,
                        help="bulk items carry one of this many subjects and a date (bench/bulk.py --subjects)")
    parser.add_argument("--batch-size", type=int, default=None, help="SAMO_BULK_BATCH_SIZE (default: the setting)")
    args = parser.parse_args()
    benches = [name for name in args.bench.split(",") if name]
    if not benches or set(benches) - set(BENCHES):
        parser.error(f"--bench: a comma-separated subset of {','.join(BENCHES)}")

    from bench.bulk import bulk_round, raw_best
    from bench.concurrent_clients import Texts, interactive_round
    from config.settings import Settings

    batch_size = args.batch_size or Settings.from_env().bulk_batch_size
    pool = unique_texts(max(20_000, args.n))
    runs: dict[tuple[str, str], list[Figures]] = {}
    raw: list[float] = []
    with ExitStack() as stack:
        trees = (stack.enter_context(checked_out(args.old, "old")), new_tree(stack, args.new))
        classifier = load_classifier() if "bulk" in benches else None
        print(f"{' vs '.join(tree.label for tree in trees)}: {args.rounds} rounds of {', '.join(benches)}; "
              f"{os.cpu_count()} CPUs; {load()}", flush=True)
        for number in range(1, args.rounds + 1):
            for bench in benches:
                if bench == "bulk":
                    print(f"round {number} raw model, {args.n} texts, batch {batch_size}:", flush=True)
                    raw.append(raw_best(classifier, pool[:args.n], batch_size))
                for tree in trees:
                    print(f"round {number} {bench}, {tree.label} ({load()}):", flush=True)
                    if bench == "concurrent":
                        figures = interactive_round(tree.root, Texts(pool), args)
                    else:
                        figures = bulk_round(tree.root, pool[:args.n], batch_size, subjects=args.subjects)
                    runs.setdefault((bench, tree.label), []).append(figures)
    labels = (trees[0].label, trees[1].label)
    print(f"\nmedian of {args.rounds} round(s) per tree; {load()}")
    for bench in benches:
        old, new = (median_figures(runs[bench, label]) for label in labels)
        unit = "texts" if bench == "bulk" else "jobs"
        print(summary_table(bench, labels, old, new, unit))
        if bench == "bulk":
            best = max(raw)
            print(f"  raw model best of this run: {best:.1f} texts/s (batch {batch_size}); end to end / raw best: "
                  f"old {old.rate / best:.3f}, new {new.rate / best:.3f} (goal >= {GOAL_BULK_OF_RAW})")


if __name__ == "__main__":
    main()
