"""The entry point of worker, beat and Flower processes: ``celery -A tasks.worker worker -Q cpu``.

Like a WSGI module for a web server, only the ``celery`` command imports this: it reads the
settings from the environment once, makes the process's Celery app (``config.celery``) and
installs the process's services (``tasks.services``). Task modules never import it. The
signal handlers below set up a worker: refuse a `gpu` queue without CUDA and the ONNX engine
without onnxruntime, configure dynamic batching, serve worker metrics and load models before
the first job, and tell ``/readyz`` when they are loaded (``tasks.events.models_loaded``).
"""
from __future__ import annotations

import logging
import os

from celery import signals

from config.celery import make_celery
from config.job_types import model_queue_of
from config.settings import Settings
from tasks import events
from tasks.services import Services, current, install
from workers.readiness import mark_not_ready, mark_ready

log = logging.getLogger(__name__)

settings = Settings.from_env()
app = make_celery(settings)
install(Services(settings, app))
if settings.sentry_dsn:
    from sentry_sdk.integrations.celery import CeleryIntegration

    from config import error_tracking

    error_tracking.setup(settings.sentry_dsn, settings.sentry_environment, [CeleryIntegration()])

#: Queues whose workers run models: they load them at start (batch items run on `bulk`). The
#: queues of the other emotion models (``cpu.<key>``, ``gpu.<key>``) count as their base queue.
MODEL_QUEUES = frozenset({"cpu", "gpu", "bulk"})
#: The queues a worker started on consumes per emotion model it loads (``SAMO_WORKER_EMOTION_MODELS``).
EMOTION_MODEL_QUEUES = ("cpu", "gpu")


def model_queues(queues) -> set[str]:
    return {queue for queue in queues if queue.partition(".")[0] in MODEL_QUEUES}


class GpuUnavailable(SystemExit):
    pass


class _WorkerShape:
    """What the main process learnt at start-up that its pool processes need."""

    queues: frozenset[str] = frozenset()
    pool_processes: int = 1
    hostname: str = ""


_shape = _WorkerShape()


def consumed_queues(worker) -> set[str]:
    return {queue.name for queue in worker.app.amqp.queues.consume_from.values()}


@signals.celeryd_after_setup.connect
def consume_emotion_model_queues(sender, instance, **_kwargs) -> None:
    """A worker started on `cpu` (or `gpu`) consumes, of that queue, the queue of each emotion model it loads.

    ``-Q cpu`` with ``SAMO_WORKER_EMOTION_MODELS=large`` consumes `cpu.large` only; with
    ``default,large``, `cpu` and `cpu.large`. So a job for a model never waits on a worker without it.
    """
    queues = instance.app.amqp.queues
    for queue in sorted(consumed_queues(instance) & set(EMOTION_MODEL_QUEUES)):
        wanted = [model_queue_of(queue, key) for key in settings.worker_emotion_models]
        for name in wanted:
            if name not in queues.consume_from:
                queues.select_add(name)
        if queue not in wanted:
            queues.deselect(queue)
    log.info("emotion models %s: consuming %s", ", ".join(settings.worker_emotion_models),
             ", ".join(sorted(consumed_queues(instance))))


@signals.celeryd_after_setup.connect
def refuse_gpu_queue_without_cuda(sender, instance, **_kwargs) -> None:
    """A `gpu` worker without CUDA would silently run models on the CPU at a fraction of the speed."""
    if not {queue.partition(".")[0] for queue in consumed_queues(instance)} & {"gpu"}:
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


class EngineUnavailable(SystemExit):
    pass


@signals.celeryd_after_setup.connect
def refuse_onnx_without_onnxruntime(sender, instance, **_kwargs) -> None:
    """A model worker set to an ONNX engine stops here, not on its first job, when onnxruntime is missing."""
    if not model_queues(consumed_queues(instance)):
        return
    from workers import onnx_runtime

    engines = {"SAMO_EMOTION_ENGINE": settings.emotion_engine, "SAMO_SUMMARY_ENGINE": settings.summary_engine}
    for setting in (name for name, engine in engines.items() if engine == "onnx"):
        try:
            onnx_runtime.require_onnxruntime(setting)
        except onnx_runtime.EngineUnavailable as error:
            log.critical("%s", error)
            raise EngineUnavailable(str(error)) from error


@signals.celeryd_after_setup.connect
def remember_shape(sender, instance, **_kwargs) -> None:
    _shape.queues = frozenset(consumed_queues(instance))
    _shape.pool_processes = instance.concurrency or 1
    _shape.hostname = instance.hostname
    mark_not_ready(settings.worker_ready_file)
    if model_queues(_shape.queues):
        events.models_loading(current(), instance.hostname)


@signals.worker_ready.connect
def report_ready_without_models(**_kwargs) -> None:
    """A worker that runs no models is ready once it consumes; model workers wait for their models."""
    if not model_queues(_shape.queues):
        mark_ready(settings.worker_ready_file)


@signals.worker_shutting_down.connect
def report_not_ready(**_kwargs) -> None:
    mark_not_ready(settings.worker_ready_file)


@signals.celeryd_after_setup.connect
def configure_batching(sender, instance, **_kwargs) -> None:
    from workers.batching import configure_worker

    configure_worker(instance, settings)


@signals.worker_ready.connect
def serve_worker_metrics(**_kwargs) -> None:
    from workers.metrics import serve

    serve(settings.worker_metrics_port, settings.celery_broker_url, sorted(_shape.queues))


@signals.worker_process_init.connect
def start_pool_process(**_kwargs) -> None:
    """A forked pool process opens its own connections, then loads its models."""
    from db.session import dispose_engines

    dispose_engines()
    if settings.otel_enabled:
        from config import tracing

        tracing.setup("samo-worker", client_spans=tracing.records_client_spans(settings.otel_client_spans, "worker"),
                      sample_ratio=settings.otel_sample_ratio)
    services = install(Services(settings, app))
    if model_queues(_shape.queues):
        loaded = load_models_before_first_job()
        events.models_loaded(services, _shape.hostname, os.getpid(), loaded)
        mark_ready(settings.worker_ready_file)


@signals.worker_process_shutdown.connect
def stop_pool_process(**_kwargs) -> None:
    if model_queues(_shape.queues):
        events.process_stopped(current(), _shape.hostname, os.getpid())
    if settings.otel_enabled:
        from config import tracing

        tracing.shutdown()


def load_models_before_first_job() -> list[str]:
    """Pay the model load at start-up, not on a user's first job.

    Only the models in ``SAMO_PRELOAD_MODELS`` (default: emotion, used by every job type):
    Whisper and the summariser add memory and start-up time to every model worker, so by
    default they load on the first job that needs them.
    """
    from workers.devices import configure_torch_threads
    from workers.models import preload

    threads = configure_torch_threads(settings.torch_threads, _shape.pool_processes)
    log.info("torch uses %d threads in this worker process", threads)
    return preload(settings)
