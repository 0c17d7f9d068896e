"""The one Celery app every worker, beat and Flower process imports.

Start a worker pinned to a queue: ``celery -A workers.celery_app worker -Q cpu``.
"""
from __future__ import annotations

import logging

from celery import Celery, signals

from config.celery import celery_config
from config.settings import Settings

log = logging.getLogger(__name__)

TASK_MODULES = ["tasks.emotion", "tasks.bulk", "tasks.speech", "tasks.summarize", "tasks.analyze", "tasks.maintenance",
                "tasks.webhooks"]


def make_celery(settings: Settings) -> Celery:
    """Worker processes use the module-level ``app``; the API builds its own from its settings."""
    celery = Celery("samo", include=TASK_MODULES)
    celery.config_from_object(celery_config(settings))
    return celery


settings = Settings.from_env()
app = make_celery(settings)


class GpuUnavailable(SystemExit):
    pass


def consumed_queues(worker) -> set[str]:
    return {queue.name for queue in worker.app.amqp.queues.consume_from.values()}


@signals.celeryd_after_setup.connect
def refuse_gpu_queue_without_cuda(sender, instance, **_kwargs) -> None:
    """A `gpu` worker without CUDA would silently run models on the CPU at a fraction of the speed."""
    if "gpu" not in consumed_queues(instance):
        return
    from workers.devices import cuda_available

    if not cuda_available():
        message = (
            "This worker consumes the 'gpu' queue but no CUDA device is available. "
            "Start it on a machine with an NVIDIA GPU and a CUDA build of torch, "
            "or consume the 'cpu' queue instead (-Q cpu)."
        )
        log.critical(message)
        raise GpuUnavailable(message)


@signals.worker_process_init.connect
def reset_inherited_connections(**_kwargs) -> None:
    from db.session import dispose_engines

    dispose_engines()


MODEL_QUEUES = {"cpu", "gpu"}
_consumes_model_queue = False


_consumed_queues: set[str] = set()
_pool_processes = 1


@signals.celeryd_after_setup.connect
def remember_queues(sender, instance, **_kwargs) -> None:
    global _consumes_model_queue, _consumed_queues, _pool_processes
    _consumed_queues = consumed_queues(instance)
    _pool_processes = instance.concurrency or 1
    _consumes_model_queue = bool(_consumed_queues & (MODEL_QUEUES | {"bulk"}))


@signals.celeryd_after_setup.connect
def configure_batching(sender, instance, **_kwargs) -> None:
    from workers.batching import configure_worker

    configure_worker(instance, settings)


@signals.worker_ready.connect
def serve_worker_metrics(**_kwargs) -> None:
    from workers.metrics import serve

    serve(settings.worker_metrics_port, settings.celery_broker_url, sorted(_consumed_queues))


@signals.worker_process_init.connect
def load_models_before_first_job(**_kwargs) -> None:
    """Pay the model load at start-up, not on a user's first job.

    Only the models in ``SAMO_PRELOAD_MODELS`` (default: emotion, used by every job type):
    Whisper and the summariser add memory and start-up time to every model worker, so by
    default they load on the first job that needs them.
    """
    if _consumes_model_queue:
        from workers.devices import configure_torch_threads
        from workers.models import preload

        threads = configure_torch_threads(settings.torch_threads, _pool_processes)
        log.info("torch uses %d threads in this worker process", threads)

        preload(settings)
