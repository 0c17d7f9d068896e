"""The registry's entries hold together: what the API, the router and the worker derive from them."""
from __future__ import annotations

import dataclasses
import fnmatch

import pytest

from config.celery import MAINTENANCE_QUEUE, celery_config, task_modules, task_routes
from config.job_options import EmotionOptions
from config.job_types import JOB_TYPES, JobType, register, registered
from config.settings import Settings
from tasks.enqueue import broker_messages
from workers.models import LOADERS


@pytest.mark.parametrize("name", sorted(JOB_TYPES))
def test_each_entry_names_a_handler_models_and_a_queue(name):
    entry = JOB_TYPES[name]
    assert callable(entry.load_handler())
    assert set(entry.models) <= set(LOADERS)
    assert entry.text or entry.audio
    assert hasattr(Settings(), entry.text_limit)
    assert entry.handler_module in task_modules()


def test_routes_follow_the_gpu_setting():
    for gpu, queue in ((False, "cpu"), (True, "gpu")):
        routes = task_routes(dataclasses.replace(Settings(), gpu_workers_enabled=gpu))
        assert {routes[entry.task]["queue"] for entry in JOB_TYPES.values()} == {queue}


def test_the_sweeps_and_housekeeping_have_a_queue_of_their_own():
    """Behind model work on `cpu`, the requeue sweep once left jobs lost with Redis waiting minutes."""
    config = celery_config(dataclasses.replace(Settings(), requeue_interval_s=7))
    for task in ("tasks.maintenance.requeue_stale_jobs", "tasks.maintenance.sweep_orphan_media",
                 "tasks.bulk.requeue_stale_chunks"):
        route = next(route for pattern, route in config["task_routes"].items() if fnmatch.fnmatchcase(task, pattern))
        assert route == {"queue": MAINTENANCE_QUEUE}, task
    assert MAINTENANCE_QUEUE in {queue.name for queue in config["task_queues"]}
    schedule = {entry["task"]: entry["schedule"] for entry in config["beat_schedule"].values()}
    assert schedule["tasks.maintenance.requeue_stale_jobs"] == schedule["tasks.bulk.requeue_stale_chunks"] == 7


def test_a_registered_type_is_routed_and_published_like_the_others():
    extra = JobType("echo", "Echoes.", EmotionOptions, "tasks.summarize:summarize", task="tests.echo", queue="bulk",
                    batched=True)
    with registered(extra):
        assert task_routes(Settings())["tests.echo"] == {"queue": "bulk"}
        assert broker_messages([("a", "echo"), ("b", "echo")]) == [("tests.echo", ["a", "b"], 0, None)]
    assert "echo" not in JOB_TYPES


def test_a_name_cannot_be_registered_twice_with_another_meaning():
    with pytest.raises(ValueError):
        register(dataclasses.replace(JOB_TYPES["emotion"], description="Something else."))
