"""The layers point one way: api -> tasks (publishing only) -> db -> config; workers only under tasks.

Every import statement of the project's packages is read with ``ast`` (module level and inside
functions alike), so a lazy import cannot slip past the rule.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "tasks", "db", "config", "workers")

#: Which project packages each package may import (besides itself).
ALLOWED = {
    "config": set(),
    "db": {"config"},
    "workers": {"db", "config"},
    "tasks": {"workers", "db", "config"},
    "api": {"tasks", "db", "config"},
}
#: The task modules the API may import: publishing, the completion events, the process's clients.
API_MAY_IMPORT_FROM_TASKS = {"tasks.enqueue", "tasks.events", "tasks.live_events", "tasks.webhook_events",
                             "tasks.services"}
#: Process entry points (the worker's Celery app, the model's command-line programs): they alone
#: build an app or read the environment when imported.
ENTRY_POINTS = {"tasks/worker.py", "workers/emotion/train.py", "workers/emotion/evaluate.py"}
#: Calls that build an app, read the environment or open a connection.
IMPORT_TIME_SIDE_EFFECTS = {"Celery", "from_url", "create_engine", "from_env", "getenv"}


def modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def forbidden_edges(path: Path, root: Path = ROOT) -> list[str]:
    source_package = path.relative_to(root).parts[0]
    tree = ast.parse(path.read_text(), str(path))
    problems = []
    for line, module in imported_modules(tree):
        target = module.split(".")[0]
        if target not in PACKAGES or target == source_package:
            continue
        where = f"{path.relative_to(root)}:{line} imports {module}"
        if target not in ALLOWED[source_package]:
            problems.append(where)
        elif source_package == "api" and target == "tasks" and module not in API_MAY_IMPORT_FROM_TASKS:
            problems.append(where + " (the API only publishes: " + ", ".join(sorted(API_MAY_IMPORT_FROM_TASKS)) + ")")
    return problems


def module_level_side_effects(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    problems = []
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in IMPORT_TIME_SIDE_EFFECTS:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno} calls {name} at import")
            elif isinstance(node, ast.Attribute) and node.attr == "environ":
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno} reads os.environ at import")
    return problems


def test_layers_point_one_way():
    problems = [problem for path in modules() for problem in forbidden_edges(path)]
    assert problems == []


def test_no_app_environment_or_connection_at_import():
    problems = [problem for path in modules() if str(path.relative_to(ROOT)) not in ENTRY_POINTS
                for problem in module_level_side_effects(path)]
    assert problems == []


@pytest.mark.parametrize("source, module, allowed", [
    ("api", "workers.models", False),
    ("db", "workers.webhook_signing", False),
    ("db", "tasks.events", False),
    ("config", "db.models", False),
    ("api", "tasks.lifecycle", False),
    ("api", "tasks.enqueue", True),
    ("tasks", "workers.models", True),
    ("workers", "api", False),
])
def test_the_rule_catches_a_forbidden_edge(tmp_path, source, module, allowed):
    """The checker itself: a planted import of each kind is reported, or not."""
    planted = tmp_path / source / "planted.py"
    planted.parent.mkdir()
    planted.write_text(f"def later():\n    import {module}\n")
    assert (forbidden_edges(planted, tmp_path) == []) is allowed
