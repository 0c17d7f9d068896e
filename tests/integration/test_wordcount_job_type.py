"""A job type added only through a registry entry and a handler: submitted over HTTP, run by a real worker.

The worker learns the type from ``SAMO_JOB_TYPE_PLUGINS`` (this module's ``WORDCOUNT``); the
test's API registers it for the test's duration.
"""
from __future__ import annotations

import requests
from pydantic import BaseModel, ConfigDict, Field

from config.job_types import JobType, job_type, registered
from db.jobs import JobOutcome
from tasks.lifecycle import per_job
from tests.support.polling import wait_for_job
from tests.support.stack import isolated_stack


class WordcountOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lowercase: bool = Field(default=False, description="Count `The` and `the` as one word.")


@per_job
def count_words(services, job) -> JobOutcome:
    words = job.input["text"].split()
    if job.options.get("lowercase"):
        words = [word.lower() for word in words]
    return JobOutcome({"words": len(words), "distinct": len(set(words))}, "wordcount", "1")


WORDCOUNT = JobType("wordcount", "Counts the words of a text.", WordcountOptions,
                    handler=f"{__name__}:count_words", task="tests.wordcount.count_job")


def test_a_registered_job_type_runs_end_to_end(settings, make_tenant):
    with registered(WORDCOUNT), isolated_stack(
            settings, {"cpu": ("cpu",)}, extra_env={"SAMO_JOB_TYPE_PLUGINS": f"{__name__}:WORDCOUNT",
                                                    "SAMO_PRELOAD_MODELS": ""}) as stack:
        tenant = make_tenant()
        body = {"type": "wordcount", "input": {"text": "The cat saw the other cat"}, "options": {"lowercase": True}}
        response = requests.post(f"{stack.base_url}/v1/jobs", json=body, headers=tenant.headers, timeout=10)
        assert response.status_code == 202, response.text

        done = wait_for_job(stack.base_url, response.json()["id"], tenant.headers, timeout_s=60)
        assert done["status"] == "succeeded", done
        assert done["result"] == {"words": 6, "distinct": 4}
        assert done["model"] == {"name": "wordcount", "version": "1"}

        refused = requests.post(f"{stack.base_url}/v1/jobs", headers=tenant.headers, timeout=10,
                                json={**body, "options": {"stemming": True}})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "options.stemming"
        document = requests.get(f"{stack.base_url}/openapi.json", timeout=10).json()
        assert "wordcount" in document["components"]["schemas"]["JobCreate"]["properties"]["type"]["enum"]
        assert "WordcountOptions" in document["components"]["schemas"]
    assert job_type("wordcount") is None
