"""The emotion and transcription controls in `options`: accepted as documented, bad values answered 422."""
from __future__ import annotations

import pytest

from tests.support.http import submit
from tests.support.problems import assert_problem

TEXT = {"text": "I got the job and I'm thrilled."}


@pytest.mark.parametrize("options", [
    {"top_k": 0}, {"top_k": 29}, {"top_k": "3"}, {"threshold": 1.5}, {"threshold": -0.1}, {"threshold": "0.5"},
    {"threshold": True}, {"threshold": "strict"}, {"labels": ["joy", "glee"]}, {"labels": []}, {"labels": "joy"},
    {"granularity": "word"}, {"truncate": "yes"}, {"truncate": True, "granularity": "sentence"},
])
def test_bad_emotion_controls_get_422(client, make_tenant, options):
    body = {"type": "emotion", "input": TEXT, "options": options}
    problem = assert_problem(submit(client, make_tenant(), body), 422, "validation-error")
    assert all(error["field"].startswith("options") for error in problem["errors"])


def test_unknown_labels_are_named_in_the_problem(client, make_tenant):
    body = {"type": "emotion", "input": TEXT, "options": {"labels": ["joy", "glee"]}}
    problem = assert_problem(submit(client, make_tenant(), body), 422, "validation-error")
    assert "'glee'" in problem["detail"] and "'joy'" not in problem["detail"].split("the labels are")[0]


def test_emotion_controls_are_stored_as_given(client, make_tenant):
    options = {"top_k": 2, "threshold": 0.2, "labels": ["joy", "sadness"], "granularity": "sentence"}
    response = submit(client, make_tenant(), {"type": "emotion", "input": TEXT, "options": options})
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["options"] == options
    for job_type in ("analyze", "emotion"):
        body = {"type": job_type, "input": TEXT, "options": {"threshold": "tuned", "granularity": "document"}}
        assert submit(client, make_tenant(), body).status_code == 202


@pytest.mark.parametrize("options", [
    {"initial_prompt": ""}, {"initial_prompt": "   "}, {"initial_prompt": "x" * 1001}, {"hotwords": 5},
    {"word_timestamps": "true"}, {"vad": 1}, {"language": "english"}, {"granularity": "segment"},
])
def test_bad_transcription_controls_get_422(client, make_tenant, options):
    body = {"type": "analyze", "input": TEXT, "options": options}
    assert_problem(submit(client, make_tenant(), body), 422, "validation-error")


def test_option_schemas_document_the_controls(client):
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    emotion = schemas["EmotionOptions"]["properties"]
    assert {"top_k", "threshold", "labels", "granularity", "truncate"} <= set(emotion)
    transcribe = schemas["TranscribeOptions"]["properties"]
    assert {"initial_prompt", "hotwords", "word_timestamps", "vad", "language", "granularity"} <= set(transcribe)


def test_the_emotion_model_must_be_one_the_deployment_configures(settings, make_tenant):
    import dataclasses

    from api import create_app

    two_models = create_app(dataclasses.replace(settings, emotion_models={"large": "org/big-classifier"}),
                            {"TESTING": True}).test_client()
    tenant = make_tenant()
    for job_type in ("emotion", "analyze"):
        accepted = submit(two_models, tenant, {"type": job_type, "input": TEXT, "options": {"model": "large"}})
        assert accepted.status_code == 202, accepted.get_data(as_text=True)
        assert accepted.get_json()["options"]["model"] == "large"
    for client, models in ((two_models, "default, large"), (create_app(settings, {"TESTING": True}).test_client(),
                                                            "default")):
        body = {"type": "emotion", "input": TEXT, "options": {"model": "huge"}}
        problem = assert_problem(submit(client, tenant, body), 422, "validation-error")
        assert problem["errors"] == [{"field": "options.model", "message": f"unknown model 'huge'; the models are "
                                                                           f"{models}"}]
    problem = assert_problem(submit(two_models, tenant, {"type": "emotion", "input": TEXT,
                                                         "options": {"model": "Large!"}}), 422, "validation-error")
    assert problem["errors"][0]["field"] == "options.model"
