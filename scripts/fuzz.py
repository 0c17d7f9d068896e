"""``make fuzz``: schemathesis over ``/openapi.json`` against the API as deployed, with a valid key.

The API runs under gunicorn with the production config on a migrated temporary PostgreSQL
database and a Redis database of its own (the test suite's isolation helpers), with one tenant
whose key every request carries. No worker runs: jobs stay queued, which is enough to exercise
every endpoint. The checks: no 5xx answer (``not_a_server_error``), every status and content
type documented (``status_code_conformance``, ``content_type_conformance``) and every body
matching its schema (``response_schema_conformance``). Bounded by ``--max-examples`` per
operation; the exit status is schemathesis's.

``/readyz`` is left out: with no worker running it answers 503 by design (its answers are tested
in ``tests/api/test_health.py``), which ``not_a_server_error`` would count as a failure.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance")
#: Generous limits: the run is about answers, not about being throttled after the first minute.
FUZZ_TIERS = "free=100000/60/100000"
UNTHROTTLED = {"token_requests_per_address": 0, "token_requests_per_key": 0, "failed_auth_limit": 0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=50, help="examples per operation (default 50)")
    # One: with several threads, hypothesis's parsing of lambda sources can fail inside CPython 3.11's
    # ast module ("AST constructor recursion depth mismatch"), an error of the tool, not of the API.
    parser.add_argument("--workers", type=int, default=1, help="concurrent schemathesis workers (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="a seed, to repeat a run")
    return parser.parse_args(argv)


def schemathesis_command(base_url: str, api_key: str, args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{base_url}/openapi.json",
               "--header", f"X-API-Key: {api_key}", "--checks", ",".join(CHECKS),
               "--max-examples", str(args.max_examples), "--workers", str(args.workers),
               "--phases", "examples,coverage,fuzzing", "--request-timeout", "30", "--generation-allow-x00", "true",
               "--exclude-path", "/readyz"]
    return command + (["--seed", str(args.seed)] if args.seed is not None else [])


def main(argv: list[str] | None = None) -> int:
    from config.settings import Settings, parse_tiers
    from db.migrate import upgrade_to_head
    from tests.support.gunicorn import gunicorn_server
    from tests.support.services import claimed_redis_database, temporary_database
    from tests.support.tenants import new_tenant

    args = parse_args(argv)
    with temporary_database() as database_url, claimed_redis_database() as redis_url, \
            tempfile.TemporaryDirectory(prefix="samo-fuzz-") as scratch:
        upgrade_to_head(database_url)
        settings = dataclasses.replace(
            Settings(), database_url=database_url, redis_url=redis_url, media_dir=str(Path(scratch) / "media"),
            jwt_secret="fuzz-" + uuid.uuid4().hex, rate_limit_tiers=parse_tiers(FUZZ_TIERS), **UNTHROTTLED,
        )
        tenant = new_tenant(database_url)
        with gunicorn_server(settings, Path(scratch)) as base_url:
            print(f"fuzz: {base_url} on a temporary database, {args.max_examples} examples per operation", flush=True)
            hooks = {"SCHEMATHESIS_HOOKS": "fuzz_hooks",
                     "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "scripts"), os.environ.get("PYTHONPATH")]))}
            return subprocess.run(schemathesis_command(base_url, tenant.api_key, args), cwd=ROOT,
                                  env={**os.environ, **hooks}).returncode


if __name__ == "__main__":
    sys.exit(main())
