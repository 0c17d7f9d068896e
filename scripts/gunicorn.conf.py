"""Gunicorn settings for the API: ``gunicorn -c scripts/gunicorn.conf.py "api:create_app()"``.

One config serves production (compose, Procfile), the dev stack and the benchmark, so the
numbers measured are the numbers deployed. Everything is overridable by environment variable.

Prometheus: with more than one gunicorn worker each process holds its own counters, and a
scrape would see one random worker's numbers. So whenever ``workers > 1`` this config turns on
prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, created if unset and wiped
at start), and ``api.views.health`` then serves ``/metrics`` aggregated over all workers. The variable
must be in the environment before any worker imports prometheus_client; setting it here, in the
master before the app is loaded, achieves that.
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT') or '5000'}"
# The API validates, then waits on Redis and PostgreSQL (which concurrent requests share, see
# api/fastpath/coalescing.py) and, with `Prefer: wait`, on a job: gevent workers (greenlets, with
# psycopg2 made cooperative in post_fork) hold many waiting requests each at little cost, where
# a thread per request would spend its CPU on handing the GIL around. GUNICORN_WORKER_CLASS=gthread
# still works (GUNICORN_THREADS threads each).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
workers = _int("GUNICORN_WORKERS", 2)
threads = _int("GUNICORN_THREADS", 4)
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 1000)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then so a slow leak cannot grow without bound (rarely: a restart
# costs a second of imports, and at thousands of requests a second 10k would be every few seconds).
max_requests = _int("GUNICORN_MAX_REQUESTS", 100_000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 10_000)
# "-" logs to stdout (containers); set GUNICORN_ACCESS_LOG="" to turn access logs off.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Behind a proxy that sets X-Forwarded-*; restrict with FORWARDED_ALLOW_IPS in production.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Workers heartbeat through this dir; /dev/shm avoids stalls on slow container filesystems.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
proc_name = "samo-api"
# gunicorn's control socket (for `gunicornc`) defaults to one path per user, so a second server
# on the machine (the dev stack, a bench, a test) would take it over from the first. Off unless
# GUNICORN_CONTROL_SOCKET names a path of this server's own.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

_MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"
_created_multiproc_dir = None
if workers > 1 and not os.environ.get(_MULTIPROC_VAR):
    _created_multiproc_dir = os.environ[_MULTIPROC_VAR] = tempfile.mkdtemp(prefix="samo-prometheus-")


def on_starting(server) -> None:
    """Counters from a previous run in the same directory would be added to this run's."""
    directory = os.environ.get(_MULTIPROC_VAR)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker) -> None:
    """Drop a dead worker's live gauges; its counters stay counted."""
    if os.environ.get(_MULTIPROC_VAR):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _created_multiproc_dir:
        shutil.rmtree(_created_multiproc_dir, ignore_errors=True)


def post_fork(server, worker) -> None:
    """psycopg2 blocks in C; its wait callback makes each query yield to the other greenlets."""
    if worker_class == "gevent":
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()


def post_worker_init(worker) -> None:
    """gunicorn's own 400, 414 and 431 answers as problem+json; on SIGTERM, besides gunicorn's
    graceful stop, end the app's `Prefer: wait` waits at once.

    gunicorn stops accepting and gives in-flight requests ``graceful_timeout`` seconds; a caller
    waiting up to a minute for its job would be cut off instead. The app's drain hook makes each
    waiting request answer now (its job's state, 202 if not finished). It runs in a greenlet or
    thread of its own: a signal handler must not take locks the interrupted code may hold.
    """
    from api.server_errors import install

    install(worker.wsgi)
    worker.log.info("Worker serving (pid: %s)", worker.pid)
    drain = getattr(worker.wsgi, "extensions", {}).get("samo_drain")
    if drain is None:
        return
    graceful_exit = worker.handle_exit

    def exit_and_drain(sig, frame) -> None:
        graceful_exit(sig, frame)
        if worker_class == "gevent":
            import gevent

            gevent.spawn(drain)
        else:
            import threading

            threading.Thread(target=drain, name="samo-drain", daemon=True).start()

    signal.signal(signal.SIGTERM, exit_and_drain)


def post_request(worker, req, environ, resp) -> None:
    """Let other connections' greenlets run between two requests of one keep-alive connection.

    A greenlet only yields when it waits; one whose client sends its next request at once (a
    load balancer's pooled connection hammering a fast path such as /healthz) would otherwise
    serve it without ever waiting and starve the others (GET /healthz p99 at saturation, in
    docs/benchmarks.md).
    """
    if worker_class == "gevent":
        import gevent

        gevent.sleep(0)
