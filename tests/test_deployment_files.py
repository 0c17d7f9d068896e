"""The Procfile, docker-compose.yml, Dockerfile, gunicorn config and Kubernetes manifests agree with
each other and the code.

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
from tests.support.kubernetes import by_kind, containers, pod_spec, render

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
    "worker_retention": "worker-retention",
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
    for name in ("api", "worker-cpu", "worker-gpu", "worker-webhooks", "worker-bulk", "beat", "worker-maintenance",
                 "worker-retention"):
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
    assert "./sdk/python" in (ROOT / "requirements" / "api.txt").read_text().split()
    assert dockerfile.index("COPY sdk/ sdk/") < dockerfile.index("pip install -r requirements/worker.txt")
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


# --- Kubernetes (deploy/kubernetes/) ---------------------------------------------------------------

KUBE_VARIABLE = re.compile(r"\$\((\w+)\)")
SECRETS_EXAMPLE = ROOT / "deploy" / "kubernetes" / "secrets.example.env"


def kube_tokens(command: list[str]) -> list[str]:
    """A container command with Kubernetes' $(VAR) written as ${VAR}, like the Procfile's."""
    return normalise([KUBE_VARIABLE.sub(r"${\1}", token) for token in command])


def secret_keys() -> set[str]:
    lines = SECRETS_EXAMPLE.read_text().splitlines()
    return {line.partition("=")[0] for line in lines if line.strip() and not line.startswith("#")}


def secret_settings() -> set[str]:
    import dataclasses

    from config.settings import Settings

    return {f.metadata["env"] for f in dataclasses.fields(Settings) if f.metadata["secret"]}


def worker_deployments(documents) -> dict[str, dict]:
    """Queue -> the Deployment whose celery worker consumes it."""
    workers = {}
    for deployment in by_kind(documents, "Deployment").values():
        tokens = pod_spec(deployment)["containers"][0]["command"]
        if tokens[:4] == ["celery", "-A", "tasks.worker", "worker"]:
            workers[tokens[tokens.index("-Q") + 1]] = deployment
    return workers


@pytest.fixture(scope="module")
def gpu_manifests():
    return render("gpu")


@pytest.fixture(scope="module")
def cpu_manifests():
    return render("cpu-only")


def test_kubernetes_runs_the_procfile_commands(gpu_manifests):
    # Interpolations first: a ${VAR:?message} may hold spaces.
    processes = {name: shlex.split(INTERPOLATION.sub(r"${\1}", command)) for name, command in procfile().items()}
    deployments = by_kind(gpu_manifests, "Deployment")
    command = {name: kube_tokens(pod_spec(d)["containers"][0]["command"]) for name, d in deployments.items()}
    assert command["samo-api"] == processes["web"]
    assert command["samo-beat"] == processes["beat"]
    assert command["samo-flower"] == processes["flower"]
    assert normalise(by_kind(gpu_manifests, "Job")["samo-migrate"]["spec"]["template"]["spec"]["containers"][0][
        "command"]) == normalise(compose()["services"]["migrate"]["command"])
    for queue, deployment in worker_deployments(gpu_manifests).items():
        tokens = kube_tokens(pod_spec(deployment)["containers"][0]["command"])
        expected = processes.get(f"worker_{queue}")
        if expected is None:
            continue
        # Kubernetes pins the pool size to the container's CPU limit; Celery would count the node's.
        if "--concurrency" not in expected:
            expected = [*expected, "--concurrency", tokens[-1]]
        assert tokens == expected, queue


def test_every_queue_has_a_worker_deployment_scaled_on_its_redis_list(gpu_manifests, cpu_manifests):
    workers = worker_deployments(gpu_manifests)
    # The maintenance queue is in the manifests already; it joins QUEUES with its worker.
    assert set(workers) == set(QUEUES) | {"maintenance"}
    assert set(worker_deployments(cpu_manifests)) == set(workers) - {"gpu"}
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in by_kind(gpu_manifests, "ScaledObject").values()}
    for queue, deployment in workers.items():
        name = deployment["metadata"]["name"]
        (trigger,) = scaled[name]["spec"]["triggers"]
        assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == queue, queue
        assert trigger["authenticationRef"]["name"] in by_kind(gpu_manifests, "TriggerAuthentication")
        tokens = pod_spec(deployment)["containers"][0]["command"]
        assert tokens[tokens.index("--hostname") + 1] == f"{queue}@%h"
    assert scaled["samo-worker-gpu"]["spec"]["minReplicaCount"] == 0
    assert scaled["samo-worker-cpu"]["spec"]["minReplicaCount"] >= 1
    auth = next(iter(by_kind(gpu_manifests, "TriggerAuthentication").values()))
    assert {ref["key"] for ref in auth["spec"]["secretTargetRef"]} <= secret_keys()


def test_gpu_workers_request_an_nvidia_gpu_on_gpu_nodes(gpu_manifests):
    spec = pod_spec(worker_deployments(gpu_manifests)["gpu"])
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert any(key.startswith("nvidia.com/") for key in spec["nodeSelector"])
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    config = by_kind(gpu_manifests, "ConfigMap")["samo-config"]["data"]
    assert config["SAMO_GPU_WORKERS"] == "true" and config["SAMO_READYZ_REQUIRES_WORKERS"] == "false"


def test_probes_use_the_health_endpoints_and_the_worker_ready_file(gpu_manifests):
    config = by_kind(gpu_manifests, "ConfigMap")["samo-config"]["data"]
    api = pod_spec(by_kind(gpu_manifests, "Deployment")["samo-api"])["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for queue, deployment in worker_deployments(gpu_manifests).items():
        worker = pod_spec(deployment)["containers"][0]
        for probe in ("startupProbe", "readinessProbe"):
            assert worker[probe]["exec"]["command"] == ["test", "-f", config["SAMO_WORKER_READY_FILE"]], queue
        assert f"--destination {queue}@$HOSTNAME" in worker["livenessProbe"]["exec"]["command"][-1], queue


def test_kubernetes_environment_uses_real_settings_and_keeps_secrets_out_of_the_config_map(gpu_manifests):
    known = settings_env_names()
    config = by_kind(gpu_manifests, "ConfigMap")["samo-config"]["data"]
    samo_names = {name for name in [*config, *secret_keys()] if name.startswith("SAMO_")}
    assert samo_names <= known, samo_names - known
    credentials = secret_settings() | {"SAMO_DATABASE_URL", "SAMO_REDIS_URL", "SAMO_BROKER_URL"}
    assert not credentials & set(config), credentials & set(config)
    assert credentials - {"SAMO_BROKER_URL"} <= secret_keys()
    # What compose gives every process, Kubernetes gives it too (from the ConfigMap or the Secret).
    compose_env = set(yaml.safe_load(COMPOSE.read_text())["x-samo-env"])
    assert compose_env <= set(config) | secret_keys(), compose_env - set(config) - secret_keys()
    for deployment in by_kind(gpu_manifests, "Deployment").values():
        for container in containers(pod_spec(deployment)):
            sources = {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in container["envFrom"]}
            assert sources == {"samo-config", "samo-secrets"}, deployment["metadata"]["name"]
            for variable in container.get("env", []):
                assert not variable["name"].startswith("SAMO_") or variable["name"] in known
