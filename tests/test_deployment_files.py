"""The Procfile, docker-compose.yml, Dockerfile and gunicorn config agree with each other and the code.

Nothing here needs Docker; when a compose client is installed, its own validation runs too.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from config.celery import QUEUES

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
COMPOSE = ROOT / "docker-compose.yml"
GUNICORN_CONF = ROOT / "scripts" / "gunicorn.conf.py"

# Procfile process -> compose service running the same command.
PROCESS_TO_SERVICE = {
    "web": "api",
    "worker_cpu": "worker-cpu",
    "worker_gpu": "worker-gpu",
    "worker_webhooks": "worker-webhooks",
    "worker_bulk": "worker-bulk",
    "beat": "beat",
    "worker_maintenance": "worker-maintenance",
    "flower": "flower",
}
INTERPOLATION = re.compile(r"\$\{(\w+)(?:[:?-][^}]*)?\}")


def procfile() -> dict[str, str]:
    processes = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def normalise(command: str | list[str]) -> list[str]:
    """Tokens with every ${VAR...} interpolation reduced to ${VAR}: defaults may differ, names may not."""
    tokens = command if isinstance(command, list) else shlex.split(command)
    return [INTERPOLATION.sub(r"${\1}", token) for token in tokens]


def settings_env_names() -> set[str]:
    return set(re.findall(r'"(SAMO_[A-Z0-9_]+)"', (ROOT / "config" / "settings.py").read_text()))


def test_every_procfile_process_runs_the_same_command_in_compose():
    processes, services = procfile(), compose()["services"]
    assert set(processes) == set(PROCESS_TO_SERVICE)
    for process, service in PROCESS_TO_SERVICE.items():
        assert service in services, f"no compose service for Procfile process {process}"
        assert normalise(services[service]["command"]) == normalise(processes[process]), process


def test_celery_commands_name_the_real_app_and_configured_queues():
    importlib.import_module("tasks.worker")
    commands = list(procfile().values()) + [
        service["command"] for service in compose()["services"].values() if "command" in service
    ]
    celery_commands = [normalise(c) for c in commands if normalise(c)[0] == "celery"]
    assert len(celery_commands) >= 10
    for tokens in celery_commands:
        assert tokens[1:3] == ["-A", "tasks.worker"], tokens
        if "-Q" in tokens:
            queues = tokens[tokens.index("-Q") + 1].split(",")
            assert set(queues) <= set(QUEUES), tokens
    worker_queues = {
        tokens[tokens.index("-Q") + 1] for tokens in celery_commands if "worker" in tokens and "-Q" in tokens
    }
    # Every queue the API and beat route to has a consumer.
    assert set(QUEUES) <= worker_queues


def test_gunicorn_app_target_and_config_are_importable():
    tokens = normalise(procfile()["web"])
    assert tokens[:3] == ["gunicorn", "-c", "scripts/gunicorn.conf.py"]
    module_name, _, factory_call = tokens[-1].partition(":")
    factory = getattr(importlib.import_module(module_name), factory_call.removesuffix("()"))
    assert callable(factory)
    spec = importlib.util.spec_from_file_location("samo_gunicorn_conf", GUNICORN_CONF)
    conf = importlib.util.module_from_spec(spec)
    previous = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    try:
        spec.loader.exec_module(conf)
        assert conf.worker_class == "gevent"
        assert conf.bind.endswith(":5000") or os.environ.get("PORT") or os.environ.get("GUNICORN_BIND")
        if conf.workers > 1:
            assert os.path.isdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    finally:
        created = os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if previous is not None:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = previous
        elif created:
            shutil.rmtree(created, ignore_errors=True)


def test_migrate_service_runs_the_cli_and_gates_everything_that_touches_the_database():
    services = compose()["services"]
    assert normalise(services["migrate"]["command"]) == ["python", "-m", "api.cli", "db", "upgrade"]
    assert importlib.util.find_spec("api.cli") is not None, "api/cli.py (db upgrade) is missing"
    for name in ("api", "worker-cpu", "worker-gpu", "worker-webhooks", "worker-bulk", "beat", "worker-maintenance"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_compose_environment_uses_only_real_settings():
    known = settings_env_names()
    assert "SAMO_DATABASE_URL" in known and "SAMO_GPU_WORKERS" in known
    text = COMPOSE.read_text()
    mentioned = set(re.findall(r"\b(SAMO_[A-Z0-9_]+)", text))
    assert mentioned and mentioned <= known, mentioned - known
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("${IMAGE_NAME"):
            env = service["environment"]
            assert env["SAMO_DATABASE_URL"].startswith("postgresql+psycopg2://"), name
            assert env["SAMO_REDIS_URL"].startswith("redis://redis:6379"), name
            # One value for all: it decides where the API and beat publish model jobs.
            assert env["SAMO_GPU_WORKERS"] == "${SAMO_GPU_WORKERS:-false}", name
            assert env["SAMO_JWT_SECRET"].startswith("${SAMO_JWT_SECRET:?"), name


def test_gpu_worker_reserves_an_nvidia_gpu_and_is_opt_in():
    gpu = compose()["services"]["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]} in devices
    assert gpu["build"]["args"]["TORCH_VARIANT"] != "cpu"


def test_health_checks_exist_and_flower_requires_basic_auth():
    services = compose()["services"]
    for name in ("api", "postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ping" in services["redis"]["healthcheck"]["test"]
    assert "--basic-auth=${FLOWER_BASIC_AUTH:?" in procfile()["flower"]
    assert services["flower"]["ports"] == ["127.0.0.1:${FLOWER_PORT:-5555}:5555"]


def test_dockerfile_builds_one_image_with_a_torch_variant_argument():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG TORCH_VARIANT=cpu" in dockerfile
    assert 'CMD ["gunicorn", "-c", "scripts/gunicorn.conf.py", "api:create_app()"]' in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "instance/"} <= set(ignored)


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_client_validates_the_file():
    """`compose config` resolves interpolation and checks the schema without a Docker engine."""
    client = _compose_client()
    if client is None:
        pytest.skip("no docker compose client installed")
    env = {**os.environ, "SAMO_JWT_SECRET": "x" * 32, "FLOWER_BASIC_AUTH": "admin:secret"}
    for profile in ([], ["--profile", "gpu"]):
        result = subprocess.run(
            [*client, "-f", str(COMPOSE), *profile, "config", "--services"],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        # Compose v2 leaves profiled services out unless asked for; v1 lists them all.
        assert "api" in result.stdout.split()
        assert not profile or "worker-gpu" in result.stdout.split()
    missing = {k: v for k, v in env.items() if k != "SAMO_JWT_SECRET"}
    result = subprocess.run([*client, "-f", str(COMPOSE), "config"], capture_output=True, text=True,
                            env=missing, cwd=ROOT, timeout=60)
    assert result.returncode != 0 and "SAMO_JWT_SECRET" in result.stderr
