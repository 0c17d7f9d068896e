"""Per-job emotion model choice with real workers and real models: a job for `large` goes to the
worker that loads `large` only, waits (queued, and /readyz says so) while no such worker runs,
and its result names the model, version and key that made it."""
from __future__ import annotations

import json
import shutil
import time

import pytest
import requests

from tests.support.http import post_job
from tests.support.polling import wait_for_job, wait_until
from tests.support.stack import isolated_stack
from workers.emotion.model import default_artifact_dir

TEXT = "I finally finished the marathon and I am so proud of myself."


@pytest.fixture(scope="module")
def large_model(tmp_path_factory):
    """A second local model: the shipped weights under a config of its own, so its version differs
    (its ONNX export is shared: the export cache keys by name and weights)."""
    folder = tmp_path_factory.mktemp("models") / "large"
    shutil.copytree(default_artifact_dir(), folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["description"] = "a second copy, configured as `large` by the model-choice tests"
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


def readiness(base_url: str) -> tuple[int, dict]:
    response = requests.get(base_url + "/readyz", timeout=10)
    return response.status_code, response.json()


def worker_log(worker) -> str:
    return worker.log_path.read_text(errors="replace")


def test_a_job_for_another_model_runs_only_on_a_worker_that_loads_it(settings, make_tenant, large_model):
    tenant = make_tenant()
    with isolated_stack(settings, {"default": ("cpu",), "large": ("cpu",)}, start_workers=False,
                        extra_env={"SAMO_EMOTION_MODELS": f"large={large_model}"},
                        emotion_models={"large": str(large_model)}) as stack:
        stack.workers["large"].env["SAMO_WORKER_EMOTION_MODELS"] = "large"
        stack.workers["default"].start()

        refused = requests.post(f"{stack.base_url}/v1/jobs", headers=tenant.headers, timeout=30,
                                json={"type": "emotion", "input": {"text": TEXT}, "options": {"model": "huge"}})
        assert refused.status_code == 422, refused.text
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        assert refused.json()["errors"] == [{"field": "options.model",
                                             "message": "unknown model 'huge'; the models are default, large"}]

        waiting = post_job(stack.base_url, tenant.headers, TEXT, options={"model": "large"})
        plain = wait_for_job(stack.base_url, post_job(stack.base_url, tenant.headers, TEXT)["id"], tenant.headers,
                             timeout_s=180)
        assert plain["status"] == "succeeded", plain
        assert plain["model"]["key"] == "default"
        status, body = wait_until(lambda: (answer := readiness(stack.base_url))[0] == 503
                                  and "queues" in answer[1]["checks"]["workers"] and answer,
                                  timeout_s=60, interval_s=0.5, message="not ready without a `large` worker")
        workers = body["checks"]["workers"]
        assert "no live worker consumes queue(s): cpu.large" in workers["error"]
        assert workers["queues"] == {"cpu": {"workers": 1, "models_ready": 1},
                                     "cpu.large": {"workers": 0, "models_ready": 0}}
        time.sleep(2)
        still = requests.get(f"{stack.base_url}/v1/jobs/{waiting['id']}", headers=tenant.headers, timeout=10).json()
        assert still["status"] == "queued", still

        stack.workers["large"].start()
        done = wait_for_job(stack.base_url, waiting["id"], tenant.headers, timeout_s=240)
        assert done["status"] == "succeeded", done
        assert done["model"]["key"] == "large" and done["model"]["name"] == plain["model"]["name"]
        assert done["model"]["version"] != plain["model"]["version"]
        assert done["result"]["probabilities"] == pytest.approx(plain["result"]["probabilities"], abs=1e-6)

        analyzed = post_job(stack.base_url, tenant.headers, TEXT, job_type="analyze",
                            options={"model": "large", "services": ["emotion"]})
        analyzed = wait_for_job(stack.base_url, analyzed["id"], tenant.headers, timeout_s=180)
        assert analyzed["status"] == "succeeded", analyzed
        assert analyzed["result"]["models"]["emotion"] == {**{k: done["model"][k] for k in ("name", "version")},
                                                           "key": "large"}

        large_log, default_log = worker_log(stack.workers["large"]), worker_log(stack.workers["default"])
        assert "emotion batch on cpu.large (model large)" in large_log
        assert "cpu.large" not in default_log and "emotion batch on cpu (model default)" in default_log
        assert "emotion batch on cpu " not in large_log
        assert "(key large)" in large_log and "(key default)" not in large_log

        status, body = wait_until(lambda: (answer := readiness(stack.base_url))[0] == 200 and answer,
                                  timeout_s=60, interval_s=0.5, message="ready with a `large` worker")
        assert body["checks"]["workers"]["queues"] == {"cpu": {"workers": 1, "models_ready": 1},
                                                       "cpu.large": {"workers": 1, "models_ready": 1}}


def queued_messages(redis_url: str, queue: str) -> int:
    import redis

    from workers.metrics import queue_keys

    client = redis.Redis.from_url(redis_url)
    return sum(client.llen(key) for key in queue_keys(queue))


def test_jobs_are_published_and_requeued_to_their_models_queue(settings, make_tenant, db_session):
    import uuid

    import redis
    from sqlalchemy import select

    from config.celery import make_celery
    from db.models import Job
    from tasks.maintenance import send_again
    from workers.metrics import queue_keys

    tenant = make_tenant()
    with isolated_stack(settings, {}, start_workers=False, emotion_models={"large": "org/big-classifier"}) as stack:
        redis_url = stack.settings.redis_url
        ids = [post_job(stack.base_url, tenant.headers, TEXT, options=options)["id"]
               for options in ({"model": "large"}, {}, {"model": "default"})]
        assert (queued_messages(redis_url, "cpu.large"), queued_messages(redis_url, "cpu")) == (1, 2)

        redis.Redis.from_url(redis_url).delete(*queue_keys("cpu.large"), *queue_keys("cpu"))
        rows = db_session.execute(select(Job.id, Job.type, Job.options)
                                  .where(Job.id.in_([uuid.UUID(job_id) for job_id in ids]))).all()
        assert send_again(stack.settings, make_celery(stack.settings), rows) == 3
        assert (queued_messages(redis_url, "cpu.large"), queued_messages(redis_url, "cpu")) == (1, 2)
