"""Celery configuration under Celery's documented setting names, built from ``Settings``."""
from __future__ import annotations

from kombu import Queue

from config.redis_transport import TRANSPORT
from config.settings import Settings

# In order of precedence: a worker consuming several queues takes from the first non-empty one
# (`queue_order_strategy` below), so bulk chunks never hold up interactive jobs or deliveries.
QUEUES = ("cpu", "gpu", "webhooks", "bulk")


def task_routes(settings: Settings) -> dict[str, dict[str, str]]:
    """Model work goes to `gpu` when GPU workers are configured, else `cpu`; housekeeping stays on `cpu`."""
    model_queue = {"queue": settings.model_queue}
    return {
        "tasks.emotion.*": model_queue,
        "tasks.speech.*": model_queue,
        "tasks.summarize.*": model_queue,
        "tasks.analyze.*": model_queue,
        "tasks.maintenance.*": {"queue": "cpu"},
        "tasks.bulk.requeue_stale_chunks": {"queue": "cpu"},
        "tasks.bulk.*": {"queue": "bulk"},
        "tasks.webhooks.*": {"queue": "webhooks"},
    }


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
                "schedule": 60.0,
            },
            "requeue-stale-batch-chunks": {
                "task": "tasks.bulk.requeue_stale_chunks",
                "schedule": 60.0,
            },
            "sweep-orphan-media": {
                "task": "tasks.maintenance.sweep_orphan_media",
                "schedule": 600.0,
            },
        },
        "timezone": "UTC",
    }
