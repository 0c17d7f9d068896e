"""The Celery app, built by :func:`make_celery` from ``Settings`` under Celery's documented setting names.

Nothing here runs at import: every process makes its app once, the worker's entry point
(``tasks.worker``) for workers, beat and Flower, ``tasks.services`` for processes that
only publish (the API). Routing and the task modules a worker imports derive from the job-type
registry (``config.job_types``).
"""
from __future__ import annotations

from celery import Celery
from kombu import Queue

from config import job_types
from config.redis_transport import TRANSPORT
from config.settings import Settings

# In order of precedence: a worker consuming several queues takes from the first non-empty one
# (`queue_order_strategy` below), so bulk chunks never hold up interactive jobs or deliveries.
# `maintenance` (the requeue sweeps, housekeeping) has a small worker of its own: never behind
# model work, it is what brings back jobs whose messages the broker lost.
# `retention` (deleting jobs past their retention) has a worker of its own too, so a long purge
# never delays the requeue sweeps.
QUEUES = ("maintenance", "cpu", "gpu", "webhooks", "bulk", "retention")
MAINTENANCE_QUEUE = "maintenance"
RETENTION_QUEUE = "retention"


#: Task modules that are not job types: housekeeping, bulk chunks, webhook sending.
SERVICE_TASK_MODULES = ("tasks.bulk", "tasks.maintenance", "tasks.retention", "tasks.webhooks", "tasks.erasures")
#: The module that makes one Celery task per registered job type.
JOB_TASK_MODULE = "tasks.jobs"


def task_modules() -> list[str]:
    """What a worker imports: the job tasks, their handlers' modules, and the service tasks."""
    return list(dict.fromkeys([JOB_TASK_MODULE, *job_types.handler_modules(), *SERVICE_TASK_MODULES]))


def task_routes(settings: Settings) -> dict[str, dict[str, str]]:
    """Each job type's task to its queue (model work to `gpu` when GPU workers are configured,
    else `cpu`); housekeeping and the requeue sweeps to `maintenance`, chunks to `bulk`,
    deliveries to `webhooks`, the retention sweep to `retention`."""
    routes = {entry.task: {"queue": entry.queue_name(settings)} for entry in job_types.JOB_TYPES.values()}
    return {
        **routes,
        "tasks.maintenance.*": {"queue": MAINTENANCE_QUEUE},
        "tasks.erasures.*": {"queue": MAINTENANCE_QUEUE},
        "tasks.retention.*": {"queue": RETENTION_QUEUE},
        "tasks.bulk.requeue_stale_chunks": {"queue": MAINTENANCE_QUEUE},
        "tasks.bulk.*": {"queue": "bulk"},
        "tasks.webhooks.*": {"queue": "webhooks"},
    }


def webhook_time_limit_s(settings: Settings) -> int:
    return int(settings.webhook_connect_timeout_s + settings.webhook_timeout_s + 60)


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured from ``settings``, with the job types of ``SAMO_JOB_TYPE_PLUGINS`` registered."""
    job_types.load_plugins(settings.job_type_plugins)
    celery = Celery("samo", include=task_modules())
    celery.config_from_object(celery_config(settings))
    return celery


def broker_transport(broker_url: str) -> str | None:
    """``config.redis_transport`` for plain ``redis://`` brokers; None keeps the URL's own transport."""
    return TRANSPORT if broker_url.startswith("redis://") else None


def celery_config(settings: Settings) -> dict:
    return {
        "broker_url": settings.celery_broker_url,
        "broker_transport": broker_transport(settings.celery_broker_url),
        "broker_connection_retry_on_startup": True,
        # Visibility timeout must exceed the longest task, or a running job is delivered twice.
        # A killed worker's unacknowledged messages are restored by the surviving workers' periodic
        # sweep; kombu's default throttle makes that sweep run only every ~100 s.
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout_s,
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            # Listed order, not round robin: see QUEUES.
            "queue_order_strategy": "priority",
        },
        # Results live in the jobs table, not in a Celery result backend.
        "task_ignore_result": True,
        "result_backend": None,
        # A job is acknowledged only after its result is stored; a worker that dies hands it back.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Model tasks are long compared to a message round trip: reserve one at a time per process.
        "worker_prefetch_multiplier": 1,
        "task_queues": [Queue(name) for name in QUEUES],
        "task_default_queue": "cpu",
        "task_routes": task_routes(settings),
        "task_annotations": {"tasks.webhooks.deliver": {"time_limit": webhook_time_limit_s(settings)}},
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_send_task_events": True,
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            # Webhook retries due later than a countdown can safely wait in the broker, and lost messages.
            "dispatch-due-webhooks": {
                "task": "tasks.webhooks.dispatch_due",
                "schedule": 30.0,
            },
            "requeue-stale-jobs": {
                "task": "tasks.maintenance.requeue_stale_jobs",
                "schedule": float(settings.requeue_interval_s),
            },
            "requeue-stale-batch-chunks": {
                "task": "tasks.bulk.requeue_stale_chunks",
                "schedule": float(settings.requeue_interval_s),
            },
            "resume-erasures": {
                "task": "tasks.erasures.resume_erasures",
                "schedule": 60.0,
            },
            "sweep-orphan-media": {
                "task": "tasks.maintenance.sweep_orphan_media",
                "schedule": 600.0,
            },
            "purge-expired-jobs": {
                "task": "tasks.retention.purge_expired_jobs",
                "schedule": float(settings.retention_interval_s),
            },
        },
        "timezone": "UTC",
    }
