"""scripts/dev_stack.py: the embedded broker, the generated secrets and one whole run with Ctrl-C."""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


def load_dev_stack():
    spec = importlib.util.spec_from_file_location("dev_stack", ROOT / "scripts" / "dev_stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_embedded_valkey_is_a_real_server_that_keeps_its_data(tmp_path):
    dev_stack = load_dev_stack()
    server = dev_stack.start_valkey(tmp_path / "valkey", None)
    try:
        pid = server._process.pid
        # Its own session: a terminal's Ctrl-C must not kill the broker before the workers.
        assert os.getsid(pid) == pid != os.getsid(0)
        client = redis.Redis.from_url(server.connection_url + "/0")
        assert client.ping()
        client.set("queued", "job-1")
    finally:
        server.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(f"redis://127.0.0.1:{client.connection_pool.connection_kwargs['port']}/0").ping()
    again = dev_stack.start_valkey(tmp_path / "valkey", None)
    try:
        assert redis.Redis.from_url(again.connection_url + "/0").get("queued") == b"job-1"
    finally:
        again.stop()


def test_secrets_are_generated_once_and_private(tmp_path):
    dev_stack = load_dev_stack()
    first = dev_stack.persistent_secret(tmp_path / "instance" / "jwt_secret", lambda: "s3cret")
    second = dev_stack.persistent_secret(tmp_path / "instance" / "jwt_secret", lambda: "other")
    assert first == second == "s3cret"
    assert stat.S_IMODE((tmp_path / "instance" / "jwt_secret").stat().st_mode) == 0o600


#: What only a verbose run shows: the worker's banner and tasks, beat's schedule, gunicorn's boot and
#: access logs, Flower's complaints about a worker still loading its models, pip.
VERBOSE_ONLY = re.compile(r"\[tasks\]|Task \S+ received|Sending due task|beat: Starting|Booting worker|\"GET /|"
                          r"Inspect method|Requirement already satisfied|Collecting ")
#: Lines of the processes' own output a quiet run may show (a warning or two, e.g. Celery's about root,
#: which each of the four workers prints).
QUIET_LINES = 30


def assert_quiet(output: str) -> None:
    from_processes = [line for line in output.splitlines() if re.match(r"^\w+ *\| ", line)]
    assert len(from_processes) <= QUIET_LINES, "\n".join(from_processes)
    assert not VERBOSE_ONLY.search(output), VERBOSE_ONLY.search(output).group(0)


def test_a_whole_run_serves_jobs_and_stops_cleanly_on_ctrl_c(tmp_path):
    api_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAMO_", "FLOWER_", "PROMETHEUS_"))}
    log_path = tmp_path / "dev_stack.log"
    command = [sys.executable, str(ROOT / "scripts" / "dev_stack.py"), "--instance-dir", str(tmp_path / "instance"),
               "--api-port", str(api_port), "--flower-port", str(free_port()), "--concurrency", "1"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Press Ctrl-C" not in log_path.read_text(errors="replace"):
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-4000:]
            time.sleep(0.5)
        output = log_path.read_text()
        key = re.search(r"^\s+(samo_[0-9a-f]{8}_\S+)$", output, re.M).group(1)
        broker = re.search(r"Broker: (redis://\S+) \(embedded Valkey\)", output).group(1)
        base = f"http://127.0.0.1:{api_port}"
        response = requests.post(base + "/v1/jobs", json={"type": "emotion", "input": {"text": "hello"}},
                                 headers={"Authorization": f"ApiKey {key}"}, timeout=10)
        assert response.status_code == 202, response.text
        ready = None
        while time.monotonic() < deadline:
            ready = requests.get(base + "/readyz", timeout=10)
            if ready.status_code == 200:
                break
            time.sleep(1)
        assert ready.status_code == 200, ready.text
        while "dev_stack: ready" not in log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, log_path.read_text()[-4000:]
            time.sleep(0.5)
        assert_quiet(log_path.read_text(errors="replace"))
        flower_auth = (tmp_path / "instance" / "flower_basic_auth").read_text().strip()
        assert flower_auth.partition(":")[2] not in output
        assert str(tmp_path / "instance" / "flower_basic_auth") in output
        cli = shlex.split(re.search(r"^More keys:  (.+) keys create --tenant demo$", output, re.M).group(1))
        check_the_cli_works_on_the_running_stack(cli, tmp_path / "instance", env, base, broker)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=90)
    assert code == 0, log_path.read_text()[-4000:]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{api_port}/healthz", timeout=2)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(broker).ping()
    assert "dev_stack: stopping valkey" in log_path.read_text()
    assert not (tmp_path / "instance" / "dev-stack.env").exists()


def check_the_cli_works_on_the_running_stack(cli: list[str], instance: Path, env: dict[str, str], base: str,
                                             broker: str) -> None:
    """The CLI as the stack prints it, run from the repository root with no SAMO_* variable set."""

    def run_cli(*args: str) -> str:
        completed = subprocess.run([*cli, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert completed.returncode == 0, completed.stderr
        return completed.stdout

    assert stat.S_IMODE((instance / "dev-stack.env").stat().st_mode) == 0o600
    assert stat.S_ISSOCK((instance / "gunicorn.ctl").stat().st_mode)  # gunicorn's of its own, not ~/.gunicorn's
    listing = run_cli("settings")
    assert re.search(rf"^SAMO_REDIS_URL={re.escape(broker)}\s", listing, re.M), listing
    assert re.search(rf"^SAMO_DATABASE_URL=sqlite:///{re.escape(str(instance.resolve() / 'samo.db'))}\s",
                     listing, re.M), listing
    key = run_cli("keys", "create", "--tenant", "demo").strip()
    headers = {"Authorization": f"ApiKey {key}"}
    # Fresh connections, so that both gunicorn workers are likely to have the key cached.
    for _ in range(8):
        assert requests.get(base + "/v1/jobs", headers=headers, timeout=10).status_code == 200
    epoch = redis.Redis.from_url(broker).get("samo:auth:key-epoch")
    run_cli("keys", "revoke", "_".join(key.split("_")[:2]))
    assert redis.Redis.from_url(broker).get("samo:auth:key-epoch") != epoch
    for _ in range(8):
        assert requests.get(base + "/v1/jobs", headers=headers, timeout=10).status_code == 401
