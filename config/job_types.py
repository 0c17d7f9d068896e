"""The job types, each declared once.

Everything else derives from an entry: the API's validation of `POST /v1/jobs` (type, inputs,
options, text limit), the OpenAPI enums and descriptions, the queue a job is routed to
(``config.celery``), the Celery task a worker runs for it (``tasks.jobs``), which tasks batch
many jobs per message, and the models a worker preloads.

Adding a job type is one entry here (or :func:`register` from a plugin module named in
``SAMO_JOB_TYPE_PLUGINS``), one handler module under ``tasks/`` and its models under
``workers/``, and a test. This module imports no worker code: the API process reads it too,
so handlers are named by ``"module:function"`` and imported only by workers.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydantic import BaseModel

from config import job_options as options
from config.settings import DEFAULT_EMOTION_MODEL, Settings

#: The queue of a job type that follows ``SAMO_GPU_WORKERS`` (`gpu` when set, else `cpu`).
MODEL_QUEUE = "model"


def model_queue_of(queue: str, emotion_model: str = DEFAULT_EMOTION_MODEL) -> str:
    """The queue of jobs for the emotion model ``emotion_model`` among those of ``queue``: the
    queue itself for the default model, else ``<queue>.<key>`` (only workers loading it consume that)."""
    return queue if emotion_model == DEFAULT_EMOTION_MODEL else f"{queue}.{emotion_model}"


def emotion_model_of(queue: str) -> str:
    """The emotion model key a queue named by :func:`model_queue_of` carries."""
    _, dot, key = queue.partition(".")
    return key if dot else DEFAULT_EMOTION_MODEL


@dataclass(frozen=True)
class JobType:
    name: str
    description: str
    options: type[BaseModel]
    #: ``"module:function"`` that runs a list of claimed jobs (see ``tasks.lifecycle.Handler``).
    handler: str
    #: The Celery task name; its messages carry job ids.
    task: str
    text: bool = True
    audio: bool = False
    #: The Settings attribute bounding ``input.text``.
    text_limit: str = "max_document_chars"
    #: ``MODEL_QUEUE`` or a queue name (``config.celery.QUEUES``).
    queue: str = MODEL_QUEUE
    #: Many job ids per message, gathered into batches by the worker (``workers.batching``).
    batched: bool = False
    #: Models the handler uses, by their name in ``workers.models.LOADERS``.
    models: tuple[str, ...] = ()

    def queue_name(self, settings: Settings, emotion_model: str = DEFAULT_EMOTION_MODEL) -> str:
        queue = settings.model_queue if self.queue == MODEL_QUEUE else self.queue
        return model_queue_of(queue, emotion_model) if self.takes_model_choice else queue

    @property
    def takes_model_choice(self) -> bool:
        """Its jobs run on the emotion model their ``options.model`` names (``SAMO_EMOTION_MODELS``)."""
        return "emotion" in self.models

    @property
    def handler_module(self) -> str:
        return self.handler.partition(":")[0]

    def load_handler(self):
        module, _, function = self.handler.partition(":")
        return getattr(importlib.import_module(module), function)


JOB_TYPES: dict[str, JobType] = {}


def register(job_type: JobType) -> JobType:
    if job_type.name in JOB_TYPES and JOB_TYPES[job_type.name] != job_type:
        raise ValueError(f"job type {job_type.name!r} is already registered")
    JOB_TYPES[job_type.name] = job_type
    return job_type


def unregister(name: str) -> None:
    JOB_TYPES.pop(name, None)


@contextmanager
def registered(job_type: JobType) -> Iterator[JobType]:
    """``job_type`` registered for the duration of the block (tests, one-off scripts)."""
    register(job_type)
    try:
        yield job_type
    finally:
        unregister(job_type.name)


def load_plugins(references: tuple[str, ...]) -> None:
    """Register the job types named ``"module:attribute"`` (a JobType, or a list of them)."""
    for reference in references:
        module, _, attribute = reference.partition(":")
        declared = getattr(importlib.import_module(module), attribute)
        for job_type in declared if isinstance(declared, (list, tuple)) else [declared]:
            register(job_type)


def job_type(name: str) -> JobType | None:
    return JOB_TYPES.get(name)


def names() -> list[str]:
    return list(JOB_TYPES)


def audio_types() -> frozenset[str]:
    return frozenset(name for name, entry in JOB_TYPES.items() if entry.audio)


def emotion_model_queues(settings: Settings) -> list[str]:
    """Every queue a job may be routed to by its emotion model (``SAMO_EMOTION_MODELS``)."""
    queues = [entry.queue_name(settings, key) for entry in JOB_TYPES.values() if entry.takes_model_choice
              for key in settings.emotion_model_refs]
    return list(dict.fromkeys(queues))


def handler_modules() -> list[str]:
    return list(dict.fromkeys(entry.handler_module for entry in JOB_TYPES.values()))


for _entry in (
    JobType("emotion", "The 28 GoEmotions labels of a text: probabilities, the labels over their thresholds, "
                       "the top one and valence; a long text is read window by window, and "
                       "`granularity: sentence` scores each sentence too.",
            options.EmotionOptions, "tasks.emotion:analyze", task="tasks.emotion.analyze_job",
            batched=True, models=("emotion",)),
    JobType("summarize", "A summary of a text (extractive by default).",
            options.SummarizeOptions, "tasks.summarize:summarize", task="tasks.summarize.summarize_job",
            models=("summarizer",)),
    JobType("transcribe", "A recording transcribed (faster-whisper), with emotion per segment and overall.",
            options.TranscribeOptions, "tasks.speech:transcribe", task="tasks.speech.transcribe_job",
            text=False, audio=True, models=("transcriber", "emotion")),
    JobType("analyze", "Emotion and/or summary of a text or a recording, in one result.",
            options.AnalyzeOptions, "tasks.analyze:analyze", task="tasks.analyze.analyze_job",
            audio=True, models=("transcriber", "emotion", "summarizer")),
):
    register(_entry)
