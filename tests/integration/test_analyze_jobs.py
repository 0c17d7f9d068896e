"""Combined analysis: emotion and summary of a text, or of a recording after transcription, in one job."""
from __future__ import annotations

import uuid
from pathlib import Path

import requests
from sqlalchemy import func, select

from db.models import EmotionScore
from tests.integration.conftest import SPOKEN
from tests.integration.test_summarize_jobs import DIARY, assert_quotes_the_input
from tests.support.http import post_upload
from tests.support.polling import wait_for_job
from tests.support.transcripts import word_error_rate


def finished(base_url, tenant, job) -> dict:
    done = wait_for_job(base_url, job["id"], tenant.headers, timeout_s=180)
    assert done["status"] == "succeeded", done
    return done


def test_a_text_gets_emotion_and_summary_in_one_result(live_server, cpu_worker, make_tenant, db_session):
    tenant = make_tenant()
    response = requests.post(f"{live_server}/v1/jobs", json={"type": "analyze", "input": {"text": DIARY},
                                                             "services": ["emotion", "summary"],
                                                             "options": {"sentences": 2}},
                             headers=tenant.headers, timeout=10)
    assert response.status_code == 202, response.text
    done = finished(live_server, tenant, response.json())
    result = done["result"]
    assert result["services"] == ["emotion", "summary"]
    assert "transcript" not in result
    assert result["emotion"]["top_emotion"] in result["emotion"]["probabilities"]
    assert len(result["summary"]["sentence_indices"]) == 2
    assert_quotes_the_input(result["summary"], DIARY)
    assert set(result["models"]) == {"emotion", "summary"}
    rows = db_session.scalar(select(func.count()).select_from(EmotionScore)
                             .where(EmotionScore.job_id == uuid.UUID(done["id"])))
    assert rows == len(result["emotion"]["probabilities"])


def test_a_recording_is_transcribed_then_analysed(live_server, cpu_worker, make_tenant, spoken_clips, settings):
    tenant = make_tenant()
    job = post_upload(live_server, tenant.headers, spoken_clips["mp3"], job_type="analyze", options='{"sentences": 1}')
    done = finished(live_server, tenant, job)
    result = done["result"]
    transcript = result["transcript"]
    assert word_error_rate(SPOKEN, transcript["text"]) <= 0.15
    assert all("emotion" in segment for segment in transcript["segments"])
    assert result["emotion"]["top_emotion"]
    assert len(result["summary"]["sentence_indices"]) == 1
    assert_quotes_the_input(result["summary"], transcript["text"])
    assert set(result["models"]) == {"transcription", "emotion", "summary"}
    assert not list(Path(settings.media_dir).glob(f"{done['id']}*"))


def test_only_the_requested_services_run(live_server, cpu_worker, make_tenant):
    tenant = make_tenant()
    response = requests.post(f"{live_server}/v1/jobs", json={"type": "analyze", "input": {"text": DIARY},
                                                             "services": ["summary"]},
                             headers=tenant.headers, timeout=10)
    result = finished(live_server, tenant, response.json())["result"]
    assert result["services"] == ["summary"]
    assert "emotion" not in result and result["summary"]["summary"]
