"""Submitting every job type through the Flask client: uploads, limits, options (no worker)."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import struct
import uuid
import zlib
from pathlib import Path

import pytest

from tests.conftest import settings_env
from tests.support import audio
from tests.support.problems import assert_problem
from tests.support.processes import run_python_json

FORMATS = ("wav", "flac", "mp3", "ogg", "m4a")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-audio")
    wav = audio.speak("Thank you for listening to my short voice note.", folder / "note.wav")
    return {"wav": wav, **{ext: audio.convert(wav, folder / f"note.{ext}") for ext in FORMATS[1:]}}


def upload(client, tenant, path, job_type="transcribe", filename=None, headers=None, **fields):
    data = {**({"type": job_type} if job_type is not None else {}), **fields}
    if path is not None:
        data["file"] = (io.BytesIO(Path(path).read_bytes()), filename or Path(path).name)
    return client.post("/v1/jobs", data=data, content_type="multipart/form-data",
                       headers={**tenant.headers, **(headers or {})})


def media_files(settings) -> list[Path]:
    """The uploads on disk; a worker of the session may remove others' meanwhile, so tests compare what was added."""
    root = Path(settings.media_dir)
    return sorted(root.iterdir()) if root.is_dir() else []


def limited_app(settings, tmp_path, **limits):
    """An app with its own limits and media directory."""
    from api import create_app

    limited = dataclasses.replace(settings, media_dir=str(tmp_path / "media"), **limits)
    return limited, create_app(limited, {"TESTING": True}).test_client()


@pytest.fixture
def small_limits(settings, tmp_path):
    return limited_app(settings, tmp_path, max_upload_bytes=40_000)


@pytest.mark.parametrize("fmt", FORMATS)
def test_audio_uploads_are_accepted_and_stored_under_the_job_id(client, make_tenant, settings, clips, fmt):
    response = upload(client, make_tenant(), clips[fmt])
    assert response.status_code == 202, response.get_data(as_text=True)
    job = response.get_json()
    assert job["type"] == "transcribe" and job["status"] == "queued"
    content = clips[fmt].read_bytes()
    stored = job["input"]["audio"]
    assert stored["filename"] == f"note.{fmt}"
    assert stored["size_bytes"] == len(content)
    assert stored["sha256"] == hashlib.sha256(content).hexdigest()
    assert 1.5 < stored["duration_s"] < 6
    path = Path(settings.media_dir) / f"{job['id']}.{fmt}"
    assert path.read_bytes() == content
    assert not [p for p in media_files(settings) if p.name.endswith(".part")]


def test_cancel_removes_the_upload(client, make_tenant, settings, clips):
    tenant = make_tenant()
    job = upload(client, tenant, clips["wav"]).get_json()
    assert any(p.name.startswith(job["id"]) for p in media_files(settings))
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.headers).status_code == 200
    assert not any(p.name.startswith(job["id"]) for p in media_files(settings))


def test_an_upload_over_the_declared_size_is_refused_before_anything_is_stored(small_limits, make_tenant, tmp_path):
    limited, client = small_limits
    big = audio.noise(tmp_path / "long.wav", seconds=10)
    assert big.stat().st_size > limited.max_upload_bytes + 64 * 1024
    problem = assert_problem(upload(client, make_tenant(), big), 413, "payload-too-large")
    assert problem["max_bytes"] == limited.max_upload_bytes
    assert media_files(limited) == []


def test_a_file_just_over_the_limit_is_refused_and_its_copy_removed(small_limits, make_tenant):
    limited, client = small_limits
    blob = io.BytesIO(os.urandom(limited.max_upload_bytes + 1))
    response = client.post("/v1/jobs", data={"type": "transcribe", "file": (blob, "a.wav")},
                           content_type="multipart/form-data", headers=make_tenant().headers)
    assert_problem(response, 413, "payload-too-large")
    assert media_files(limited) == []


def test_a_body_longer_than_announced_is_cut_off_at_the_limit(small_limits, make_tenant):
    """No Content-Length (a chunked upload): Werkzeug's stream limit stops reading at the limit."""
    limited, client = small_limits
    boundary = "samo-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\ntranscribe\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + os.urandom(200_000) + f"\r\n--{boundary}--\r\n".encode()
    response = client.post("/v1/jobs", input_stream=io.BytesIO(body), headers=make_tenant().headers,
                           content_type=f"multipart/form-data; boundary={boundary}",
                           environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"})
    problem = assert_problem(response, 413, "payload-too-large")
    assert problem["max_bytes"] == limited.max_upload_bytes
    assert media_files(limited) == []


def test_audio_longer_than_the_limit_is_a_422(settings, tmp_path, make_tenant, clips):
    limited, client = limited_app(settings, tmp_path, max_audio_seconds=1.0)
    problem = assert_problem(upload(client, make_tenant(), clips["wav"]), 422, "audio-too-long")
    assert problem["max_seconds"] == limited.max_audio_seconds
    assert media_files(limited) == []


def test_json_bodies_are_still_limited_to_the_json_size(small_limits, make_tenant, settings):
    _, client = small_limits
    text = "a" * (settings.max_request_bytes + 10)
    response = client.post("/v1/jobs", json={"type": "summarize", "input": {"text": text}},
                           headers=make_tenant().headers)
    assert_problem(response, 413, "payload-too-large")


@pytest.mark.parametrize(
    ("fields", "with_file", "status", "slug"),
    [
        ({"type": "horoscope"}, True, 422, "unknown-job-type"),
        ({}, True, 422, "unknown-job-type"),
        ({"type": "emotion"}, True, 415, "unsupported-media-type"),
        ({"type": "transcribe"}, False, 422, "missing-file"),
        ({"type": "transcribe", "options": "{not json"}, True, 422, "validation-error"),
        ({"type": "transcribe", "options": '["en"]'}, True, 422, "validation-error"),
        ({"type": "transcribe", "options": '{"language": "english"}'}, True, 422, "validation-error"),
        ({"type": "transcribe", "options": '{"beam": 3}'}, True, 422, "validation-error"),
        ({"type": "transcribe", "services": "emotion"}, True, 422, "validation-error"),
        ({"type": "analyze", "services": "emotion,horoscope"}, True, 422, "validation-error"),
        ({"type": "analyze", "services": "[]"}, True, 422, "validation-error"),
        ({"type": "transcribe", "colour": "blue"}, True, 422, "validation-error"),
    ],
)
def test_bad_multipart_submissions_are_problems_and_store_nothing(client, make_tenant, settings, clips, fields,
                                                                  with_file, status, slug):
    before = media_files(settings)
    fields = dict(fields)
    response = upload(client, make_tenant(), clips["wav"] if with_file else None, job_type=fields.pop("type", None),
                      **fields)
    assert_problem(response, status, slug)
    assert not set(media_files(settings)) - set(before), "a refused upload kept its file"


def test_an_empty_file_is_a_422(client, make_tenant, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert_problem(upload(client, make_tenant(), empty), 422, "empty-file")


def png_file(path: Path) -> Path:
    """A valid one-pixel PNG picture."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(("make", "slug"), [
    (lambda folder, clips: audio.text_file(folder / "notes.wav"), "audio-unreadable"),
    (lambda folder, clips: png_file(folder / "picture.png"), "audio-unreadable"),
    (lambda folder, clips: png_file(folder / "picture.wav"), "audio-unreadable"),
    (lambda folder, clips: audio.garbage_file(folder / "corrupt.mp3"), "audio-unreadable"),
    (lambda folder, clips: audio.truncated_copy(clips["wav"], folder / "header.wav", 44), "audio-empty"),
])
def test_files_whose_headers_are_not_audio_are_refused_and_not_kept(client, make_tenant, settings, clips, tmp_path,
                                                                   make, slug):
    before = media_files(settings)
    problem = assert_problem(upload(client, make_tenant(), make(tmp_path, clips)), 422, slug)
    assert problem["code"] == slug.replace("-", "_")
    assert not set(media_files(settings)) - set(before), "a refused upload kept its file"


def test_a_real_recording_cut_off_after_its_headers_is_accepted_for_the_worker_to_judge(client, make_tenant,
                                                                                       clips, tmp_path):
    """Only decoding finds what is missing; the job reports it (see the integration tests)."""
    half = audio.truncated_copy(clips["wav"], tmp_path / "half.wav", clips["wav"].stat().st_size // 2)
    response = upload(client, make_tenant(), half)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["input"]["audio"]["format"] == "wav"


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        ({"type": "transcribe", "input": {"text": "hi"}}, "unsupported-media-type"),
        ({"type": "summarize", "input": {"text": "One. Two."}, "options": {"sentences": 1, "ratio": 0.5}},
         "validation-error"),
        ({"type": "summarize", "input": {"text": "One. Two."}, "options": {"ratio": 1.5}}, "validation-error"),
        ({"type": "summarize", "input": {"text": "One. Two."}, "options": {"sentences": 0}}, "validation-error"),
        ({"type": "summarize", "input": {"text": "One. Two."}, "options": {"sentences": "2"}}, "validation-error"),
        ({"type": "summarize", "input": {"text": "One. Two."}, "services": ["summary"]}, "validation-error"),
        ({"type": "summarize", "input": {"text": "  "}}, "empty-text"),
        ({"type": "analyze", "input": {"text": "Hi."}, "services": ["horoscope"]}, "validation-error"),
        ({"type": "analyze", "input": {"text": "Hi."}, "services": ["emotion"], "options": {"services": ["emotion"]}},
         "validation-error"),
        ({"type": "emotion", "input": {"text": "Hi."}, "options": {"sentences": 2}}, "validation-error"),
    ],
)
def test_bad_json_submissions_are_problems(client, make_tenant, body, slug):
    response = client.post("/v1/jobs", json=body, headers=make_tenant().headers)
    assert_problem(response, 415 if slug == "unsupported-media-type" else 422, slug)


def test_text_jobs_store_their_validated_options(client, make_tenant):
    tenant = make_tenant()

    def submit(body):
        response = client.post("/v1/jobs", json=body, headers=tenant.headers)
        assert response.status_code == 202, response.get_data(as_text=True)
        return response.get_json()

    assert submit({"type": "summarize", "input": {"text": "One. Two."}, "options": {"ratio": 0.5}})["options"] == {
        "ratio": 0.5}
    assert submit({"type": "analyze", "input": {"text": "Hi."}})["options"] == {"services": ["emotion", "summary"]}
    job = submit({"type": "analyze", "input": {"text": "Hi."}, "services": ["summary"], "options": {"sentences": 1}})
    assert job["options"] == {"services": ["summary"], "sentences": 1}


@pytest.mark.parametrize("job_type", ["emotion", "summarize", "analyze"])
def test_text_jobs_take_documents_longer_than_bulk_items(client, make_tenant, settings, job_type):
    text = "This sentence repeats. " * (settings.max_text_chars // 20)
    assert settings.max_text_chars < len(text) <= settings.max_document_chars
    response = client.post("/v1/jobs", json={"type": job_type, "input": {"text": text}},
                           headers=make_tenant().headers)
    assert response.status_code == 202


def test_analyze_takes_audio_with_services_and_options(client, make_tenant, clips):
    response = upload(client, make_tenant(), clips["mp3"], job_type="analyze", services='["emotion"]',
                      options=json.dumps({"language": "en"}))
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["options"] == {"language": "en", "services": ["emotion"]}


def test_idempotent_uploads_replay_the_job_and_keep_one_file(client, make_tenant, settings, clips):
    tenant = make_tenant()
    key = {"Idempotency-Key": "voice-note-1"}
    first = upload(client, tenant, clips["wav"], headers=key)
    files_after_first = media_files(settings)
    again = upload(client, tenant, clips["wav"], headers=key)
    assert again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_problem(upload(client, tenant, clips["flac"], headers=key), 409, "idempotency-key-reused")
    assert not set(media_files(settings)) - set(files_after_first), "a replay or a refusal kept a file"


def test_an_upload_takes_a_webhook_field_stored_with_its_job(client, make_tenant, settings, clips, db_session):
    from sqlalchemy import select

    from db.models import WebhookSubscription

    tenant = make_tenant()
    hook = {"url": "https://hooks.example.com/voice", "events": ["job.succeeded"]}
    response = upload(client, tenant, clips["wav"], webhook=json.dumps(hook))
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["id"]
    subscription = db_session.scalar(select(WebhookSubscription)
                                     .where(WebhookSubscription.job_id == uuid.UUID(job_id)))
    assert subscription is not None and subscription.url == hook["url"]
    assert list(subscription.events) == hook["events"]
    before = set(media_files(settings))
    bad_json = upload(client, tenant, clips["wav"], webhook='{"url": 3}')
    assert assert_problem(bad_json, 422, "validation-error")["errors"][0]["field"] == "webhook.url"
    assert_problem(upload(client, tenant, clips["wav"], webhook=json.dumps({"url": "http://127.0.0.1/x"})),
                   422, "invalid-webhook-url")
    assert set(media_files(settings)) <= before  # a worker may have finished the accepted job meanwhile


def test_a_replayed_upload_with_another_webhook_is_a_conflict(client, make_tenant, clips):
    tenant = make_tenant()
    key = {"Idempotency-Key": "voice-note-hook"}
    hook = {"url": "https://hooks.example.com/a"}
    first = upload(client, tenant, clips["wav"], headers=key, webhook=json.dumps(hook))
    assert upload(client, tenant, clips["wav"], headers=key, webhook=json.dumps(hook)).get_json()["id"] == \
        first.get_json()["id"]
    assert_problem(upload(client, tenant, clips["wav"], headers=key,
                          webhook=json.dumps({"url": "https://hooks.example.com/b"})), 409, "idempotency-key-reused")
    assert_problem(upload(client, tenant, clips["wav"], headers=key), 409, "idempotency-key-reused")


def test_jobs_in_flight_cap_refuses_uploads_without_keeping_them(client, make_tenant, settings, clips):
    tenant = make_tenant(tier="oneflight")
    assert upload(client, tenant, clips["wav"]).status_code == 202
    before = media_files(settings)
    assert_problem(upload(client, tenant, clips["wav"]), 429, "too-many-jobs-in-flight")
    assert not set(media_files(settings)) - set(before), "a refused upload kept its file"


def test_openapi_documents_uploads_and_results(client):
    document = client.get("/openapi.json").get_json()
    content = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(content)
    schemas = document["components"]["schemas"]
    assert {"TranscriptionResult", "SummaryResult", "AnalyzeResult", "SummarizeOptions"} <= set(schemas)


def test_an_upload_does_not_import_model_libraries_into_the_api(settings, make_tenant, clips):
    tenant = make_tenant()
    script = f"""
import json, sys
from api import create_app
client = create_app().test_client()
with open({str(clips['wav'])!r}, "rb") as f:
    response = client.post("/v1/jobs", data={{"type": "transcribe", "file": (f, "n.wav")}},
                           headers={{"X-API-Key": {tenant.api_key!r}}}, content_type="multipart/form-data")
assert response.status_code == 202, response.get_data(as_text=True)
client.post("/v1/jobs/" + response.get_json()["id"] + "/cancel", headers={{"X-API-Key": {tenant.api_key!r}}})
heavy = {{"torch", "transformers", "faster_whisper", "ctranslate2"}}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""
    assert run_python_json(script, settings_env(settings)) == []
