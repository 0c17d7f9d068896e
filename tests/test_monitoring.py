"""deploy/monitoring/: the alert rules pass promtool, and the rules and the dashboard use only metrics
that the API's /metrics and the workers' metrics endpoint really export."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from tests.support.kubernetes import require_tool

MONITORING = Path(__file__).resolve().parent.parent / "deploy" / "monitoring"
ALERTS = MONITORING / "alerts.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
#: Prometheus' own series, not exports of ours.
PROMETHEUS_SERIES = {"up"}
SERIES = re.compile(r"\b((?:samo|flask)_[a-z0-9_]+)\b")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count")}


def exported_series(exposition: str) -> set[str]:
    """Sample names each ``# TYPE`` line of an exposition allows (a histogram's buckets, a counter's total)."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE):
        names |= {name + suffix for suffix in SUFFIXES.get(kind, ("",))}
    return names


def expressions() -> list[str]:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [rule["expr"] for rule in rules] + [target["expr"] for panel in panels for target in panel["targets"]]


def test_promtool_accepts_the_alert_rules():
    promtool = require_tool(["promtool"] if shutil.which("promtool") else None, "promtool")
    result = subprocess.run([*promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_has_the_panels_operators_need():
    titles = " ".join(panel["title"].lower() for panel in json.loads(DASHBOARD.read_text())["panels"])
    for topic in ("submissions", "queue depth", "latency", "batch size", "webhook success", "workers"):
        assert topic in titles, topic


@pytest.fixture
def api_exposition(client, make_tenant):
    client.get("/v1/jobs", headers=make_tenant().headers)
    return client.get("/metrics").get_data(as_text=True)


def test_rules_and_dashboard_name_only_exported_metrics(api_exposition, settings):
    from workers.metrics import REGISTRY, QueueDepthCollector

    worker = generate_latest(REGISTRY).decode()
    depth = QueueDepthCollector(settings.redis_url, ["cpu"])
    worker_depth = {family.name for family in depth.collect()}
    exported = exported_series(api_exposition) | exported_series(worker) | worker_depth
    named = {name for expr in expressions() for name in SERIES.findall(expr)}
    assert named, "no metric found in the rules and dashboard"
    assert named <= exported, named - exported
    assert {"samo_queue_depth", "samo_jobs_submitted_total", "samo_webhook_deliveries",
            "samo_worker_batch_size_bucket"} <= named
    # An expression naming none of ours reads a recording rule's series or Prometheus' own.
    recorded = {rule["record"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
                if "record" in rule}
    assert all(SERIES.search(expr) or expr.split("{")[0] in PROMETHEUS_SERIES | recorded for expr in expressions())
