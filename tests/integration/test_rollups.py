"""Rollups kept as results are stored: after a random mix of jobs, redeliveries and cancels run by a
real worker, they equal a recomputation from the raw per-label scores."""
from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import select

from config.valence import LABELS
from db.buckets import slot_of, utc_bucket_start
from db.models import (
    TENANT_SERIES,
    EmotionScore,
    Job,
    JobStatus,
    emotion_rollups,
    rollup_columns,
    subject_counts,
    subject_presence,
)
from db.rollups import VALUE_COLUMNS, rebuild, subtract_job
from db.subject_presence import UNITS
from tasks.enqueue import enqueue_job
from tests.support.polling import wait_for_job

TEXTS = ("I am thrilled about the new job!", "Everything went wrong and I feel awful.",
         "Thanks so much for the lovely gift.", "Why does this keep happening to me?",
         "I'm scared of tomorrow's exam.", "What a calm and ordinary afternoon.")


def stored_rollups(session, tenant_id) -> dict:
    rows = session.execute(select(emotion_rollups).where(emotion_rollups.c.tenant_id == tenant_id)).mappings().all()
    return {(row["subject"], row["slot_start"]): {name: row[name] for name in VALUE_COLUMNS} for row in rows}


def recomputed_rollups(session, tenant_id, leave_out=()) -> dict:
    """The rollups as the raw scores of the tenant's succeeded jobs say they should be."""
    rows = session.execute(
        select(Job.id, Job.subject, Job.occurred_at, EmotionScore.label, EmotionScore.probability,
               EmotionScore.above_threshold)
        .join(EmotionScore, EmotionScore.job_id == Job.id)
        .where(Job.tenant_id == tenant_id, Job.status == JobStatus.SUCCEEDED)).all()
    expected: dict = defaultdict(lambda: dict.fromkeys(VALUE_COLUMNS, 0))
    entries: dict = defaultdict(set)
    for job_id, subject, occurred_at, label, probability, over in rows:
        if job_id in leave_out:
            continue
        for series in {TENANT_SERIES, subject} - {None}:
            key = (series, slot_of(occurred_at))
            entries[key].add(job_id)
            p, q, t = rollup_columns(label)
            expected[key][p] += probability
            expected[key][q] += probability ** 2
            expected[key][t] += int(over)
    for key, jobs in entries.items():
        expected[key]["entries"] = len(jobs)
    return dict(expected)


def stored_presence(session, tenant_id) -> tuple[dict, dict]:
    presence = {(row.subject, row.unit, row.bucket_start): (row.first_slot, row.last_slot)
                for row in session.execute(select(subject_presence).where(subject_presence.c.tenant_id == tenant_id))}
    counts = {(row.unit, row.bucket_start): row.subjects
              for row in session.execute(select(subject_counts).where(subject_counts.c.tenant_id == tenant_id))}
    return presence, counts


def recomputed_presence(session, tenant_id, leave_out=()) -> tuple[dict, dict]:
    """Each subject's first and last slot per UTC week and month, and subjects per bucket, from the jobs."""
    jobs = session.execute(select(Job.id, Job.subject, Job.occurred_at).where(
        Job.tenant_id == tenant_id, Job.status == JobStatus.SUCCEEDED, Job.subject.is_not(None),
        select(EmotionScore.job_id).where(EmotionScore.job_id == Job.id).exists())).all()
    spans: dict = {}
    for job_id, subject, occurred_at in jobs:
        if job_id in leave_out:
            continue
        slot = slot_of(occurred_at)
        for unit in UNITS:
            first, last = spans.get((subject, unit, utc_bucket_start(slot, unit)), (slot, slot))
            spans[(subject, unit, utc_bucket_start(slot, unit))] = (min(first, slot), max(last, slot))
    counts: dict = defaultdict(int)
    for _, unit, start in spans:
        counts[(unit, start)] += 1
    return spans, dict(counts)


def assert_same(stored: dict, expected: dict) -> None:
    assert stored.keys() == expected.keys()
    for key, values in expected.items():
        for name, value in values.items():
            assert math.isclose(stored[key][name], value, rel_tol=1e-9, abs_tol=1e-9), (key, name)


def test_rollups_equal_the_raw_scores_after_jobs_redeliveries_and_cancels(live_server, cpu_worker, make_tenant,
                                                                         db_session, services):
    tenant = make_tenant()
    chance = random.Random(15)
    start = datetime(2026, 3, 7, tzinfo=UTC)
    submitted = []
    for number in range(24):
        subject = chance.choice(["ana", "ben", "cleo", None])
        occurred = start + timedelta(minutes=chance.randrange(0, 3 * 24 * 60))
        body = {"type": chance.choice(["emotion", "emotion", "analyze"]), "input": {"text": chance.choice(TEXTS)},
                "occurred_at": occurred.isoformat(), **({"subject": subject} if subject else {})}
        if body["type"] == "analyze":
            body["services"] = ["emotion"]
        response = requests.post(f"{live_server}/v1/jobs", json=body, headers=tenant.headers, timeout=30)
        assert response.status_code == 202, response.text
        job = response.json()
        submitted.append(job)
        if number % 5 == 0:
            requests.post(f"{live_server}/v1/jobs/{job['id']}/cancel", headers=tenant.headers, timeout=30)
        if number % 3 == 0:
            enqueue_job(services.celery, uuid.UUID(job["id"]), job["type"])
    finished = [wait_for_job(live_server, job["id"], tenant.headers, timeout_s=180) for job in submitted]
    for job in finished[::2]:
        enqueue_job(services.celery, uuid.UUID(job["id"]), job["type"])
    # A job sent after the redeliveries: once it is done, the worker has taken the messages before it.
    sentinel = requests.post(f"{live_server}/v1/jobs", json={"type": "emotion", "input": {"text": TEXTS[0]}},
                             headers=tenant.headers, timeout=30).json()
    finished.append(wait_for_job(live_server, sentinel["id"], tenant.headers, timeout_s=180))
    statuses = {job["status"] for job in finished}
    assert "succeeded" in statuses and statuses <= {"succeeded", "canceled"}, statuses

    db_session.commit()
    stored = stored_rollups(db_session, tenant.tenant_id)
    assert_same(stored, recomputed_rollups(db_session, tenant.tenant_id))
    assert stored_presence(db_session, tenant.tenant_id) == recomputed_presence(db_session, tenant.tenant_id)
    succeeded = sum(job["status"] == "succeeded" for job in finished)
    assert sum(values["entries"] for (series, _), values in stored.items() if series == TENANT_SERIES) == succeeded

    rebuild(db_session, tenant.tenant_id)
    assert_same(stored_rollups(db_session, tenant.tenant_id), stored)

    gone = uuid.UUID(next(job["id"] for job in finished if job["status"] == "succeeded"))
    assert subtract_job(db_session, gone)
    assert_same(stored_rollups(db_session, tenant.tenant_id),
                recomputed_rollups(db_session, tenant.tenant_id, leave_out={gone}))
    assert stored_presence(db_session, tenant.tenant_id) == recomputed_presence(db_session, tenant.tenant_id,
                                                                                leave_out={gone})
    db_session.rollback()
    assert set(LABELS) == {label for label, in db_session.execute(
        select(EmotionScore.label).where(EmotionScore.tenant_id == tenant.tenant_id).distinct())}


def test_a_transcription_counts_its_document_level_emotion(live_server, cpu_worker, make_tenant, db_session,
                                                           spoken_clips):
    tenant = make_tenant()
    with open(spoken_clips["wav"], "rb") as clip:
        response = requests.post(f"{live_server}/v1/jobs", headers=tenant.headers, timeout=30,
                                 data={"type": "transcribe", "subject": "voice", "occurred_at": "2026-01-05T08:00:00Z"},
                                 files={"file": ("spoken.wav", clip)})
    assert response.status_code == 202, response.text
    done = wait_for_job(live_server, response.json()["id"], tenant.headers, timeout_s=300)
    assert done["status"] == "succeeded", done
    db_session.commit()
    stored = stored_rollups(db_session, tenant.tenant_id)
    slot = datetime(2026, 1, 5, 8, tzinfo=UTC)
    assert {key: values["entries"] for key, values in stored.items()} == {("voice", slot): 1, (TENANT_SERIES, slot): 1}
    emotion = done["result"]["emotion"]
    assert math.isclose(stored[("voice", slot)]["p_joy"], emotion["probabilities"]["joy"], rel_tol=1e-9)
