"""Bulk batches end to end: real API over HTTP, a batching `cpu` worker, a `bulk` worker, the database, Redis."""
from __future__ import annotations

import csv
import io
import json
import time
import uuid

import pytest
import requests
from sqlalchemy import func, select

from db.models import EmotionScore, Job
from tests.support.polling import TERMINAL, wait_for_job, wait_until


@pytest.fixture
def stack(batching_stack):
    return batching_stack


def get_batch(stack, tenant, batch_id) -> dict:
    response = requests.get(f"{stack.base_url}/v1/batches/{batch_id}", headers=tenant.headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def results(stack, tenant, batch_id, fmt="jsonl") -> tuple[str, list]:
    response = requests.get(f"{stack.base_url}/v1/batches/{batch_id}/results?format={fmt}",
                            headers=tenant.headers, timeout=60)
    assert response.status_code == 200, response.text
    if fmt == "csv":
        return response.headers["X-Batch-Status"], list(csv.DictReader(io.StringIO(response.text)))
    return response.headers["X-Batch-Status"], [json.loads(line) for line in response.text.splitlines()]


def test_a_bulk_upload_with_malformed_rows_runs_its_valid_rows(stack, make_tenant, db_session):
    tenant = make_tenant()
    tag = uuid.uuid4().hex[:6]
    lines = []
    for i in range(45):
        if i % 9 == 4:
            lines.append('{"text": "unterminated')
        elif i % 9 == 7:
            lines.append(json.dumps({"text": "   ", "id": f"r{i}"}))
        else:
            lines.append(json.dumps({"text": f"I really loved item {i % 12} today {tag}", "id": f"r{i}"}))
    upload = ("items.jsonl", "\n".join(lines).encode(), "application/x-ndjson")
    response = requests.post(f"{stack.base_url}/v1/batches", files={"file": upload}, headers=tenant.headers,
                             timeout=60)
    assert response.status_code == 202, response.text
    batch = response.json()
    bad_rows = [i + 1 for i in range(45) if i % 9 in (4, 7)]
    assert [error["row"] for error in batch["errors"]] == bad_rows
    assert {error["code"] for error in batch["errors"]} == {"invalid-json", "empty-text"}
    assert (batch["total_items"], batch["invalid_items"]) == (35, 10)

    done = wait_until(lambda: (b := get_batch(stack, tenant, batch["id"]))["status"] == "completed" and b,
                      timeout_s=240, interval_s=0.5, message="batch completed")
    assert done["counts"] == {"queued": 0, "running": 0, "succeeded": 35, "failed": 0, "canceled": 0}
    assert done["progress"] == 1.0 and done["eta_s"] is None and done["finished_at"]

    status, lines_out = results(stack, tenant, batch["id"])
    assert status == "completed"
    good_rows = [row for row in range(1, 46) if row not in bad_rows]
    assert [line["row"] for line in lines_out] == good_rows
    assert [line["id"] for line in lines_out] == [f"r{row - 1}" for row in good_rows]
    assert all(line["status"] == "succeeded" and line["result"]["top_emotion"] for line in lines_out)
    # 12 distinct texts among 35 items: repeats within a chunk are inferred once, across chunks cached.
    assert sum(line["result"]["cached"] for line in lines_out) <= 35 - 12
    _, csv_rows = results(stack, tenant, batch["id"], "csv")
    assert [int(row["row"]) for row in csv_rows] == good_rows
    assert csv_rows[0]["top_emotion"] == lines_out[0]["result"]["top_emotion"]

    items = db_session.scalars(select(Job.id).where(Job.batch_id == uuid.UUID(batch["id"]))).all()
    scores = db_session.scalar(select(func.count()).select_from(EmotionScore).where(EmotionScore.job_id.in_(items)))
    assert scores == 35 * len(lines_out[0]["result"]["probabilities"])
    jobs = requests.get(f"{stack.base_url}/v1/batches/{batch['id']}/jobs?limit=5", headers=tenant.headers,
                        timeout=30).json()
    assert [job["status"] for job in jobs["data"]] == ["succeeded"] * 5


def test_a_large_batch_streams_partial_results_lets_interactive_jobs_through_and_cancels(stack, make_tenant):
    tenant = make_tenant()
    tag = uuid.uuid4().hex[:6]
    texts = [f"Update {i}: the release went {'well' if i % 3 else 'badly'} and I feel {tag}-{i}" for i in range(2000)]
    response = requests.post(f"{stack.base_url}/v1/batches", json=texts, headers=tenant.headers, timeout=120)
    assert response.status_code == 202, response.text
    batch_id = response.json()["id"]

    started = wait_until(lambda: (b := get_batch(stack, tenant, batch_id))["counts"]["succeeded"] > 0 and b,
                         timeout_s=240, interval_s=0.2, message="first items finished")
    assert started["status"] == "running"
    status, partial = results(stack, tenant, batch_id)
    assert status == "running"
    assert 0 < len(partial) < len(texts)
    assert all(line["status"] in TERMINAL for line in partial)
    assert [line["row"] for line in partial] == sorted(line["row"] for line in partial)

    submitted = time.monotonic()
    job = requests.post(f"{stack.base_url}/v1/jobs", json={"type": "emotion", "input": {"text": f"Help! {tag}"}},
                        headers=tenant.headers, timeout=30).json()
    finished = wait_for_job(stack.base_url, job["id"], tenant.headers, timeout_s=120)
    waited_s = time.monotonic() - submitted
    during = get_batch(stack, tenant, batch_id)
    assert finished["status"] == "succeeded"
    assert during["status"] == "running" and during["progress"] < 1, (
        f"the interactive job took {waited_s:.1f}s: the bulk batch was over before it finished")
    assert during["eta_s"] is not None and during["eta_s"] > 0

    canceled = requests.post(f"{stack.base_url}/v1/batches/{batch_id}/cancel", headers=tenant.headers, timeout=30)
    assert canceled.status_code == 200, canceled.text
    counts = canceled.json()["counts"]
    assert canceled.json()["status"] == "canceled"
    assert counts["queued"] == counts["running"] == 0
    assert counts["succeeded"] + counts["failed"] + counts["canceled"] == len(texts)
    time.sleep(2)
    after = get_batch(stack, tenant, batch_id)
    assert after["counts"] == counts, "a canceled item was stored after all"
    status, everything = results(stack, tenant, batch_id)
    assert status == "canceled" and len(everything) == len(texts)
