"""Voice jobs end to end: real HTTP, a real worker running faster-whisper tiny.en and the emotion model.

Speech is espeak-ng reading known sentences, so the transcript can be scored against the text.
"""
from __future__ import annotations

import dataclasses
import os
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from db.models import EmotionScore, Job, JobStatus
from tests.integration.conftest import FORMATS, SPOKEN
from tests.support import audio
from tests.support.http import post_upload
from tests.support.polling import wait_for_job
from tests.support.tenants import new_tenant
from tests.support.transcripts import word_error_rate


def media_of(settings, job_id) -> list[Path]:
    return list(Path(settings.media_dir).glob(f"{job_id}*"))


@pytest.fixture(scope="module")
def transcribed(live_server, cpu_worker, settings, spoken_clips):
    """One job per format, submitted together and awaited together."""
    tenant = new_tenant(settings.database_url, name=f"voice-{uuid.uuid4().hex[:10]}")
    jobs = {fmt: post_upload(live_server, tenant.headers, spoken_clips[fmt]) for fmt in FORMATS}
    return {fmt: wait_for_job(live_server, job["id"], tenant.headers, timeout_s=180) for fmt, job in jobs.items()}


@pytest.mark.parametrize("fmt", FORMATS)
def test_speech_is_transcribed_within_the_word_error_budget(transcribed, fmt):
    job = transcribed[fmt]
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert word_error_rate(SPOKEN, result["text"]) <= 0.15, result["text"]
    assert result["language"] == "en"
    assert 0 < result["language_probability"] <= 1
    assert 8 < result["duration_s"] < 14
    assert job["model"]["name"] == "whisper-tiny.en"
    assert result["models"]["emotion"]["name"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_segments_are_ordered_in_time_and_carry_emotions(transcribed, fmt):
    result = transcribed[fmt]["result"]
    segments = result["segments"]
    assert segments
    ends = 0.0
    for segment in segments:
        assert ends <= segment["start"] < segment["end"] <= result["duration_s"] + 0.01
        ends = segment["end"]
        assert segment["text"]
        emotion = segment["emotion"]
        assert emotion["top_emotion"] in emotion["probabilities"]
        assert 0 < emotion["confidence"] <= 1
    assert " ".join(s["text"] for s in segments) == result["text"]
    assert result["emotion"]["top_emotion"] in result["emotion"]["probabilities"]


def test_the_upload_is_gone_and_the_text_emotion_is_stored(transcribed, settings, db_session):
    for job in transcribed.values():
        assert media_of(settings, job["id"]) == []
    job_id = uuid.UUID(transcribed["wav"]["id"])
    rows = db_session.scalar(select(func.count()).select_from(EmotionScore).where(EmotionScore.job_id == job_id))
    assert rows == len(transcribed["wav"]["result"]["emotion"]["probabilities"])


def test_bad_audio_fails_its_job_clearly_and_the_worker_takes_the_next(live_server, cpu_worker, make_tenant,
                                                                       settings, spoken_clips, tmp_path):
    """Files whose headers are not audio are refused at submission (tests/api/test_job_types.py);
    what only decoding finds fails the job."""
    tenant = make_tenant()
    broken = audio.overwrite_middle(spoken_clips["mp3"], tmp_path / "broken.mp3", share=0.6)
    silent = audio.silence(tmp_path / "silent.wav", seconds=2)
    bad = [post_upload(live_server, tenant.headers, path) for path in (broken, silent)]
    good = post_upload(live_server, tenant.headers, spoken_clips["wav"])

    failed = [wait_for_job(live_server, job["id"], tenant.headers, timeout_s=120) for job in bad]
    assert [job["status"] for job in failed] == ["failed"] * 2
    assert [job["error"]["code"] for job in failed] == ["audio_unreadable", "audio_silent"]
    for job in failed:
        assert len(job["error"]["message"]) > 10 and "Traceback" not in job["error"]["message"]
        assert job["attempts"] == 1, "a bad file must fail the job, not crash the worker"
        assert job["result"] is None
        assert media_of(settings, job["id"]) == []

    done = wait_for_job(live_server, good["id"], tenant.headers, timeout_s=120)
    assert done["status"] == "succeeded", done
    assert word_error_rate(SPOKEN, done["result"]["text"]) <= 0.15
    assert cpu_worker.process.poll() is None


def test_the_sweep_removes_old_orphans_but_keeps_unfinished_jobs_uploads(settings, make_tenant, db_session,
                                                                         tmp_path):
    import tasks.maintenance as maintenance

    swept = dataclasses.replace(settings, media_dir=str(tmp_path / "media"), media_ttl_s=60)
    tenant = make_tenant()
    queued = Job(tenant_id=tenant.tenant_id, type="transcribe", status=JobStatus.QUEUED)
    done = Job(tenant_id=tenant.tenant_id, type="transcribe", status=JobStatus.SUCCEEDED)
    db_session.add_all([queued, done])
    db_session.commit()

    root = Path(swept.media_dir)
    root.mkdir()
    names = {"queued": f"{queued.id}.wav", "done": f"{done.id}.mp3", "no_job": f"{uuid.uuid4()}.ogg",
             "partial": f"{uuid.uuid4()}.x1y2.part", "fresh": f"{uuid.uuid4()}.wav", "stray": "notes.txt"}
    an_hour_ago = time.time() - 3600
    for key, name in names.items():
        (root / name).write_bytes(b"x")
        if key != "fresh":
            os.utime(root / name, (an_hour_ago, an_hour_ago))

    assert maintenance.sweep_orphans(swept) == 4
    assert sorted(p.name for p in root.iterdir()) == sorted([names["queued"], names["fresh"]])


def test_decoding_controls_and_per_segment_emotion(live_server, cpu_worker, make_tenant, tmp_path):
    parts = [audio.speak("I installed ComfyUI on my laptop yesterday and I am thrilled.", tmp_path / "a.wav"),
             audio.speak("But my dog died this morning and I can't stop crying.", tmp_path / "b.wav")]
    clip = audio.concatenate(parts, tmp_path / "controls.wav", gap_s=1.5)
    tenant = make_tenant()
    options = '{"hotwords": "ComfyUI", "word_timestamps": true, "granularity": "sentence", "language": "en"}'
    job = wait_for_job(live_server, post_upload(live_server, tenant.headers, clip, options=options)["id"],
                       tenant.headers, timeout_s=180)
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert "ComfyUI" in result["text"]
    segments = result["segments"]
    # tiny.en may hear the pause as one segment or two: either way each has its words and its emotion.
    assert segments and all(segment["words"] for segment in segments)
    emotion = result["emotion"]
    assert emotion["granularity"] == "sentence"
    assert all(-1 <= segment["emotion"]["valence"]["score"] <= 1 for segment in segments)
    weights = [len(segment["text"]) for segment in segments]
    expected = sum(w * s["emotion"]["probabilities"]["sadness"] for w, s in zip(weights, segments)) / sum(weights)
    assert emotion["probabilities"]["sadness"] == pytest.approx(expected, abs=2e-6)


def test_bad_decoding_controls_are_refused(live_server, make_tenant, tmp_path):
    clip = audio.speak("Hello there.", tmp_path / "hello.wav")
    with open(clip, "rb") as f:
        response = requests.post(f"{live_server}/v1/jobs", data={"type": "transcribe", "options": '{"vad": "no"}'},
                                 files={"file": ("hello.wav", f)}, headers=make_tenant().headers, timeout=30)
    assert response.status_code == 422 and response.headers["Content-Type"] == "application/problem+json"
