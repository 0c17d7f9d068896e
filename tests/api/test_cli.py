"""`python -m api.cli` through click's CliRunner, against the test database and the API over HTTP."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select, update

from api.cli import cli
from db.audit import tenant_audit_query
from db.models import Job, JobStatus
from db.session import session_scope
from tests.conftest import settings_env
from tests.support.processes import REPO_ROOT, serve_app_in_thread
from tests.support.scored_entries import Entry, store_entries
from tests.support.traces import places_holding


@pytest.fixture
def run(settings):
    runner = CliRunner()
    env = settings_env(settings)

    def invoke(*args, extra_env=None):
        return runner.invoke(cli, list(args), env={**env, **(extra_env or {})}, catch_exceptions=False)

    return invoke


def new_name():
    return f"cli-{uuid.uuid4().hex[:10]}"


def create_key(run, tenant, *scopes):
    result = run("keys", "create", "--tenant", tenant, *[arg for s in scopes for arg in ("--scope", s)])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_module_entry_point():
    completed = subprocess.run([sys.executable, "-m", "api.cli", "--help"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    for group in ("db", "tenants", "keys", "jobs"):
        assert group in completed.stdout


def test_db_upgrade_is_idempotent(run):
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output


def test_tenants_create_and_list(run):
    name = new_name()
    created = run("tenants", "create", name, "--tier", "tiny")
    assert created.exit_code == 0, created.output
    assert name in created.stdout and "tiny" in created.stdout
    listed = run("tenants", "list")
    assert listed.exit_code == 0
    line = next(line for line in listed.stdout.splitlines() if line.endswith(name))
    assert "tiny" in line
    assert run("tenants", "create", name).exit_code == 1
    unknown = run("tenants", "create", new_name(), "--tier", "platinum")
    assert unknown.exit_code == 2 and "unknown tier" in unknown.stderr


def test_key_is_printed_once_and_works(run, client):
    name = new_name()
    run("tenants", "create", name)
    result = run("keys", "create", "--tenant", name, "--scope", "jobs:read", "--name", "ci")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("samo_") and "\n" not in key
    assert "not be shown again" in result.stderr
    prefix = "_".join(key.split("_")[:2])
    assert prefix in result.stderr
    assert client.get("/v1/jobs", headers={"X-API-Key": key}).status_code == 200
    assert client.post("/v1/jobs", json={}, headers={"X-API-Key": key}).status_code == 403

    listed = run("keys", "list", "--tenant", name)
    assert listed.exit_code == 0
    assert prefix in listed.stdout and "active" in listed.stdout and "jobs:read" in listed.stdout
    assert key not in listed.output


def test_key_creation_errors(run):
    name = new_name()
    run("tenants", "create", name)
    assert run("keys", "create", "--tenant", "no-such-tenant").exit_code == 1
    bad_scope = run("keys", "create", "--tenant", name, "--scope", "root")
    assert bad_scope.exit_code == 2 and "unknown scopes" in bad_scope.stderr


def test_tenant_can_be_named_by_id(run, make_tenant):
    tenant = make_tenant()
    assert create_key(run, str(tenant.tenant_id)).startswith("samo_")


def test_revoke_by_prefix(run, client, make_tenant):
    tenant = make_tenant()
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200
    result = run("keys", "revoke", tenant.key_prefix)
    assert result.exit_code == 0, result.output
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 401
    assert "revoked" in run("keys", "list", "--tenant", tenant.name).stdout
    assert run("keys", "revoke", "samo_ffffffff").exit_code == 1


# --- jobs against the real API -----------------------------------------------------------

def test_submit_without_waiting_and_get(run, live_server, make_tenant):
    tenant = make_tenant()
    env = {"SAMO_API_KEY": tenant.api_key}
    submitted = run("jobs", "submit", "--text", "Such a relief!", "--no-wait", "--api-url", live_server,
                    extra_env=env)
    assert submitted.exit_code == 0, submitted.output
    job = json.loads(submitted.stdout)
    assert job["status"] in ("queued", "running", "succeeded") and job["input"] == {"text": "Such a relief!"}
    fetched = run("jobs", "get", job["id"], "--api-url", live_server, "--api-key", tenant.api_key)
    assert fetched.exit_code == 0, fetched.output
    assert json.loads(fetched.stdout)["id"] == job["id"]


def test_submit_waits_for_the_job_to_finish(run, live_server, make_tenant, settings, services):
    """The job is finished as a worker finishes one: its row, then its completion message."""
    from tasks.events import job_finished

    tenant = make_tenant()

    def finish_job_soon():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with session_scope(settings.database_url) as session:
                job_id = session.scalar(select(Job.id).where(Job.tenant_id == tenant.tenant_id))
                if job_id is not None:
                    time.sleep(0.5)
                    session.execute(update(Job).where(Job.id == job_id).values(
                        status=JobStatus.SUCCEEDED, result={"labels": [{"label": "relief", "score": 0.9}]}))
                    session.commit()
                    job_finished(services, job_id, JobStatus.SUCCEEDED.value, [])
                    return
            time.sleep(0.1)

    helper = threading.Thread(target=finish_job_soon)
    helper.start()
    result = run("jobs", "submit", "--text", "Such a relief!", "--timeout", "30", "--api-url", live_server,
                 extra_env={"SAMO_API_KEY": tenant.api_key})
    helper.join()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "succeeded"


def test_api_errors_exit_non_zero_with_the_problem(run, live_server):
    result = run("jobs", "submit", "--text", "hi", "--api-url", live_server, "--api-key", "samo_0_wrong")
    assert result.exit_code == 1
    assert "invalid-api-key" in result.stderr
    missing = run("jobs", "get", str(uuid.uuid4()), "--api-url", live_server, "--api-key", "samo_0_wrong")
    assert missing.exit_code == 1


def test_unreachable_api(run):
    result = run("jobs", "get", str(uuid.uuid4()), "--api-url", "http://127.0.0.1:1", "--api-key", "k")
    assert result.exit_code == 1 and "cannot reach" in result.stderr


# --- polling behaviour against a scripted fake API -----------------------------------------

def fake_job(job_id: str, status: str) -> dict:
    """A job document with every member the API's JobOut has (the SDK reads it as a ``samo.Job``)."""
    return {"id": job_id, "type": "emotion", "status": status, "input": {"text": "hello"}, "options": {},
            "result": None, "error": None, "model": None, "created_at": "2026-12-02T00:00:00Z", "started_at": None,
            "finished_at": None, "processing_ms": None, "attempts": 0, "subject": None, "occurred_at": None,
            "metadata": None}


class FakeApi:
    """Answers the submit with 429 first when asked, then serves scripted job statuses."""

    def __init__(self, statuses, refuse_first_submit=False):
        self.statuses = list(statuses)
        self.refuse_first_submit = refuse_first_submit
        self.submits, self.polls, self.idempotency_keys = 0, 0, set()
        self.app = Flask("fake-api")
        self.app.add_url_rule("/v1/jobs", "submit", self.submit, methods=["POST"])
        self.app.add_url_rule("/v1/jobs/<job_id>", "get", self.get)

    def submit(self):
        from flask import request

        self.submits += 1
        self.idempotency_keys.add(request.headers.get("Idempotency-Key"))
        assert request.headers["Authorization"] == "ApiKey fake-key"
        assert request.get_json() == {"type": "emotion", "input": {"text": "hello"}}
        if self.refuse_first_submit and self.submits == 1:
            return {"type": "x/rate-limit-exceeded", "status": 429}, 429, {"Retry-After": "1"}
        return fake_job("job-1", "queued"), 202

    def get(self, job_id):
        self.polls += 1
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        headers = {} if status in ("succeeded", "failed", "canceled") else {"Retry-After": "0"}
        return fake_job(job_id, status), 200, headers


def submit_to(run, fake, *args):
    with serve_app_in_thread(fake.app) as url:
        return run("jobs", "submit", "--text", "hello", "--api-url", url, "--api-key", "fake-key", *args)


def test_submit_takes_the_job_type_and_options_of_the_registry(run, live_server, make_tenant, settings):
    tenant = make_tenant()
    submitted = run("jobs", "submit", "--text", "One. Two. Three. Four.", "--type", "summarize", "--options",
                    '{"sentences": 1}', "--no-wait", "--api-url", live_server, "--api-key", tenant.api_key)
    assert submitted.exit_code == 0, submitted.output
    job = json.loads(submitted.output)
    assert (job["type"], job["options"]) == ("summarize", {"sentences": 1})
    refused = run("jobs", "submit", "--text", "x", "--type", "transcribe", "--api-url", live_server,
                  "--api-key", tenant.api_key)
    assert refused.exit_code == 2 and "transcribe" in refused.output


def test_polls_until_terminal_and_retries_a_refused_submit(run):
    fake = FakeApi(["queued", "running", "running", "succeeded"], refuse_first_submit=True)
    result = submit_to(run, fake, "--timeout", "20")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == fake_job("job-1", "succeeded")
    assert fake.submits == 2 and len(fake.idempotency_keys) == 1
    assert fake.polls == 4


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_unsuccessful_jobs_exit_1(run, status):
    result = submit_to(run, FakeApi(["running", status]), "--timeout", "20")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == status


def test_timeout_exits_3(run):
    started = time.monotonic()
    result = submit_to(run, FakeApi(["running"]), "--timeout", "1.5")
    assert result.exit_code == 3
    assert "did not finish" in result.stderr
    assert time.monotonic() - started < 10


def test_an_env_file_fills_in_only_what_the_environment_leaves_unset(run, tmp_path, settings):
    from config.env_file import write_env_file

    env_file = tmp_path / "dev-stack.env"
    write_env_file(env_file, {"SAMO_DATABASE_URL": "sqlite:////nowhere/samo.db", "SAMO_DEFAULT_TIER": "tiny"})
    listing = run("--env-file", str(env_file), "settings")
    assert listing.exit_code == 0, listing.output
    assert "SAMO_DEFAULT_TIER=tiny" in listing.stdout
    assert "nowhere" not in listing.stdout
    created = run("--env-file", str(env_file), "tenants", "create", new_name())
    assert created.exit_code == 0 and "tier tiny" in created.stdout, created.output


def test_a_malformed_env_file_is_refused(run, tmp_path):
    env_file = tmp_path / "dev-stack.env"
    env_file.write_text("SAMO_DEFAULT_TIER tiny\n")
    result = run("--env-file", str(env_file), "tenants", "list")
    assert result.exit_code == 2 and "expected NAME=value" in result.stderr


def test_analytics_rebuild_recomputes_a_tenants_rollups_from_its_scores(run, make_tenant, settings):
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from db.models import EmotionScore, Job, JobStatus, emotion_rollups
    from db.session import session_scope

    tenant = make_tenant()
    job_id = uuid.uuid4()
    with session_scope(settings.database_url) as session:
        session.add(Job(id=job_id, tenant_id=tenant.tenant_id, type="emotion", status=JobStatus.SUCCEEDED,
                        subject="s", occurred_at=datetime(2026, 6, 1, 10, 7, tzinfo=UTC), input={}, options={}))
        session.flush()
        session.execute(insert(EmotionScore), [
            {"job_id": job_id, "tenant_id": tenant.tenant_id, "label": label, "probability": p,
             "above_threshold": p > 0.5} for label, p in (("joy", 0.75), ("sadness", 0.25))])
    result = run("analytics", "rebuild", "--tenant", tenant.name)
    assert result.exit_code == 0, result.output
    assert "rebuilt 2 rollup rows" in result.output
    with session_scope(settings.database_url) as session:
        rows = session.execute(select(emotion_rollups.c.subject, emotion_rollups.c.slot_start,
                                      emotion_rollups.c.entries, emotion_rollups.c.p_joy, emotion_rollups.c.q_joy,
                                      emotion_rollups.c.t_joy, emotion_rollups.c.t_sadness)
                               .where(emotion_rollups.c.tenant_id == tenant.tenant_id)
                               .order_by(emotion_rollups.c.subject)).all()
    slot = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert [tuple(row) for row in rows] == [("", slot, 1, 0.75, 0.5625, 1, 0), ("s", slot, 1, 0.75, 0.5625, 1, 0)]


# --- the commands of the other job types and of batches, against the real API ------------------

def silent_wav(path, seconds: float = 1.0):
    import wave

    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(16_000)
        clip.writeframes(b"\0\0" * int(16_000 * seconds))
    return path


def test_summarize_analyze_and_transcribe_submit_their_job_types(run, live_server, make_tenant, tmp_path):
    tenant = make_tenant()
    client = ("--no-wait", "--api-url", live_server, "--api-key", tenant.api_key)
    summarized = run("summarize", "--text", "One. Two. Three.", "--options", '{"sentences": 1}', *client)
    assert summarized.exit_code == 0, summarized.output
    assert json.loads(summarized.stdout)["type"] == "summarize"
    analyzed = run("analyze", "--text", "A calm day.", "--services", "emotion", "--subject", "ana", *client)
    assert analyzed.exit_code == 0, analyzed.output
    job = json.loads(analyzed.stdout)
    assert (job["type"], job["subject"], job["input"]["text"]) == ("analyze", "ana", "A calm day.")
    clip = silent_wav(tmp_path / "quiet.wav")
    transcribed = run("transcribe", str(clip), *client)
    assert transcribed.exit_code == 0, transcribed.output
    assert json.loads(transcribed.stdout)["type"] == "transcribe"
    both = run("analyze", str(clip), "--text", "x", *client)
    assert both.exit_code == 2 and "not both" in both.output


def test_batches_upload_get_and_cancel(run, live_server, make_tenant, tmp_path):
    tenant = make_tenant()
    client = ("--api-url", live_server, "--api-key", tenant.api_key)
    path = tmp_path / "entries.csv"
    path.write_text("id,text\nr1,I love it\nr2,So sad\n")
    uploaded = run("batches", "upload", str(path), "--no-progress", *client)
    assert uploaded.exit_code == 0, uploaded.output
    batch = json.loads(uploaded.stdout)
    assert (batch["format"], batch["total_items"]) == ("csv", 2)
    fetched = run("batches", "get", batch["id"], *client)
    assert fetched.exit_code == 0 and json.loads(fetched.stdout)["id"] == batch["id"]
    canceled = run("batches", "cancel", batch["id"], *client)
    assert canceled.exit_code == 0 and json.loads(canceled.stdout)["status"] == "canceled"
    again = run("batches", "cancel", batch["id"], *client)
    assert again.exit_code == 1 and "batch-not-cancelable" in again.stderr


def test_subjects_export_then_erase_leave_the_audit_trail_and_no_trace(run, make_tenant, settings, redis, tmp_path):
    tenant = make_tenant()
    words = f"cli sentinel {uuid.uuid4().hex}"
    probabilities = {"joy": 0.9, "neutral": 0.1}
    ids = store_entries(settings.database_url, tenant.tenant_id,
                        [Entry(datetime(2026, 9, day, tzinfo=UTC), probabilities, subject="nora") for day in (2, 1)],
                        text=words)
    exported = tmp_path / "nora.jsonl"

    result = run("subjects", "export", tenant.name, "nora", "-o", str(exported))
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in exported.read_text().splitlines()] == [str(ids[1]), str(ids[0])]

    result = run("subjects", "erase", tenant.name, "nora")
    assert result.exit_code == 0, result.output
    erasure = json.loads(result.stdout.strip().splitlines()[-1])
    assert erasure["status"] == "completed" and erasure["counts"]["jobs"] == 2
    assert places_holding(words, settings, redis) == []
    with session_scope(settings.database_url) as session:
        events = session.scalars(tenant_audit_query(tenant.tenant_id)).all()
        assert sorted((event.action, event.actor["cli"]) for event in events) == [
            ("subject.erased", "python -m api.cli"), ("subject.exported", "python -m api.cli")]
    assert run("subjects", "erase", "no-such-tenant", "nora").exit_code == 1
