"""Render the Kustomize overlays in deploy/kubernetes/ with whichever kustomize is installed."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("cpu-only", "gpu")


def renderer() -> list[str] | None:
    """`kustomize build` or `kubectl kustomize` (Debian's kubernetes-client, scripts/install_system_deps.sh)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def require_tool(command: list[str] | None, name: str) -> list[str]:
    """CI installs the tools, so there a missing one fails; elsewhere the test is skipped."""
    if command is None:
        message = f"{name} is not installed (scripts/install_system_deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return command


def render(overlay: str) -> list[dict]:
    command = require_tool(renderer(), "kustomize or kubectl")
    result = subprocess.run([*command, str(KUBERNETES / "overlays" / overlay)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(documents: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == kind}


def containers(pod_spec: dict) -> list[dict]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]
