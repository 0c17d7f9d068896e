"""Submit, poll, result: real HTTP, a real Celery worker with the real model, the database and Redis."""
from __future__ import annotations

import uuid

import requests
from sqlalchemy import func, select

from db.models import EmotionScore
from tests.support.http import post_job
from tests.support.polling import wait_for_job


def test_a_submitted_job_is_analysed_and_stored(live_server, cpu_worker, make_tenant, db_session):
    tenant = make_tenant()
    job = post_job(live_server, tenant.headers, "Thank you so much for your help, I really appreciate it!")
    done = wait_for_job(live_server, job["id"], tenant.headers)

    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["top_emotion"] == "gratitude"
    assert 0 < result["confidence"] <= 1
    assert "gratitude" in result["emotions"]
    assert len(result["probabilities"]) == 28
    assert result["truncated"] is False
    assert done["model"]["name"] and done["model"]["version"]
    assert done["attempts"] == 1
    assert done["processing_ms"] is not None
    assert done["started_at"] <= done["finished_at"]

    scores = db_session.scalars(select(EmotionScore).where(EmotionScore.job_id == uuid.UUID(job["id"]))).all()
    assert len(scores) == 28
    assert [s.label for s in scores if s.is_top] == ["gratitude"]


def test_emotion_counts_per_day_are_queryable(live_server, cpu_worker, make_tenant, db_session):
    tenant = make_tenant()
    for text in ("I am so angry at you!", "This is infuriating, I hate it."):
        wait_for_job(live_server, post_job(live_server, tenant.headers, text)["id"], tenant.headers)
    per_day = db_session.execute(
        select(func.date(EmotionScore.created_at), EmotionScore.label, func.count())
        .where(EmotionScore.tenant_id == tenant.tenant_id, EmotionScore.is_top)
        .group_by(func.date(EmotionScore.created_at), EmotionScore.label)
    ).all()
    assert sum(count for _, _, count in per_day) == 2
    assert {label for _, label, _ in per_day} <= {"anger", "annoyance", "disgust", "disapproval"}


def test_a_job_submitted_with_a_jwt_completes(live_server, cpu_worker, make_tenant):
    tenant = make_tenant()
    tokens = requests.post(f"{live_server}/v1/auth/token", json={"grant_type": "api_key"},
                           headers=tenant.headers, timeout=10).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    job = post_job(live_server, bearer, "Haha, that is hilarious!")
    assert wait_for_job(live_server, job["id"], bearer)["result"]["top_emotion"] == "amusement"
