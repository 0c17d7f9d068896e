"""Settings: the defaults and variable names pinned, the environment loader, masking, the docs table."""
from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from api.cli import cli
from config.settings import GROUPS, PARSERS, PROJECT_ROOT, RateLimitTier, Settings, setting
from config.settings_docs import describe, mask_url_passwords, render_markdown, render_text, replace_table

CONFIGURATION_DOC = PROJECT_ROOT / "docs" / "configuration.md"

OLD_DEFAULTS = {
    "database_url": f"sqlite:///{PROJECT_ROOT / 'instance' / 'samo.db'}",
    "redis_url": "redis://127.0.0.1:6379/0",
    "broker_url": "",
    "broker_visibility_timeout_s": 3600,
    "gpu_workers_enabled": False,
    "jwt_secret": "",
    "jwt_access_ttl_s": 900,
    "jwt_refresh_ttl_s": 604800,
    "problem_base_uri": "https://samo-brain.dev/problems/",
    "max_text_chars": 10000,
    "max_request_bytes": 1048576,
    "rate_limit_tiers": {
        "free": RateLimitTier("free", requests=60, window_s=60, max_jobs_in_flight=20),
        "pro": RateLimitTier("pro", requests=600, window_s=60, max_jobs_in_flight=200),
        "enterprise": RateLimitTier("enterprise", requests=6000, window_s=60, max_jobs_in_flight=2000),
    },
    "default_tier": "free",
    "token_requests_per_address": 30,
    "token_requests_per_key": 10,
    "token_window_s": 60,
    "failed_auth_limit": 20,
    "failed_auth_window_s": 300,
    "proxy_hops": 0,
    "emotion_model": "",
    "emotion_models": {},
    "worker_emotion_models": ("default",),
    "emotion_device": "auto",
    "emotion_int8": True,
    "emotion_engine": "onnx",
    "emotion_onnx_quantisation": "dynamic",
    "emotion_onnx_cache": "",
    "emotion_batch_size": 32,
    "torch_threads": 0,
    "requeue_after_s": 300,
    "requeue_unpublished_after_s": 30,
    "requeue_interval_s": 10,
    "cpu_batch_max_size": 32,
    "cpu_batch_max_wait_ms": 5.0,
    "gpu_batch_max_size": 128,
    "gpu_batch_max_wait_ms": 5.0,
    "batch_max_tokens": 0,
    "batch_max_items": 100000,
    "batch_max_bytes": 52428800,
    "batches_in_flight": 5,
    "pass_overhead_tokens": 0,
    "auth_cache_ttl_s": 10.0,
    "bulk_chunk_size": 512,
    "bulk_batch_size": 64,
    "bulk_worker_nice": 10,
    "result_cache_ttl_s": 604800,
    "result_cache_secret": "",
    "erasure_chunk_size": 500,
    "worker_metrics_port": 0,
    "worker_ready_file": "",
    "readyz_requires_workers": True,
    "otel_enabled": False,
    "otel_sample_ratio": 1.0,
    "otel_client_spans": "worker",
    "sentry_dsn": "",
    "sentry_environment": "production",
    "media_dir": str(PROJECT_ROOT / "instance" / "media"),
    "media_ttl_s": 3600,
    "retention_interval_s": 3600,
    "retention_chunk_size": 500,
    "max_upload_bytes": 26214400,
    "max_audio_seconds": 600.0,
    "max_document_chars": 200000,
    "whisper_model": "",
    "whisper_device": "auto",
    "whisper_compute_type": "",
    "whisper_vad": True,
    "whisper_cpu_threads": 0,
    "whisper_batched_threshold_s": 60.0,
    "summary_model": "",
    "summary_device": "auto",
    "summary_engine": "torch",
    "summary_int8": False,
    "preload_models": ("emotion",),
    "job_type_plugins": (),
    "group_commit": True,
    "secrets_key": "",
    "webhook_allowed_destinations": (),
    "webhook_connect_timeout_s": 3.0,
    "webhook_timeout_s": 10.0,
    "webhook_max_response_bytes": 4096,
    "webhook_retry_schedule_s": (0, 5, 300, 1800, 7200, 18000, 36000, 36000),
    "webhook_retry_jitter": 0.2,
    "webhook_retry_after_max_s": 3600,
    "webhook_disable_after_failures": 10,
    "webhook_disable_after_s": 86400,
    "webhook_secret_overlap_s": 86400,
    "webhook_progress_interval_s": 10,
    "events_heartbeat_s": 15.0,
    "events_max_stream_s": 300.0,
    "events_retry_ms": 2000,
    "events_poll_interval_s": 5.0,
    "events_history_max": 500,
    "events_history_ttl_s": 3600,
    "events_batch_progress_interval_s": 1.0,
    "insights_min_entries": 5,
    "shift_event_threshold": 0.2,
    "shift_event_window_days": 7,
    "shift_event_baseline_days": 30,
    "correlations_min_support": 10,
}

OLD_ENV_NAMES = {
    "database_url": "SAMO_DATABASE_URL",
    "redis_url": "SAMO_REDIS_URL",
    "broker_url": "SAMO_BROKER_URL",
    "broker_visibility_timeout_s": "SAMO_BROKER_VISIBILITY_TIMEOUT_S",
    "gpu_workers_enabled": "SAMO_GPU_WORKERS",
    "jwt_secret": "SAMO_JWT_SECRET",
    "jwt_access_ttl_s": "SAMO_JWT_ACCESS_TTL_S",
    "jwt_refresh_ttl_s": "SAMO_JWT_REFRESH_TTL_S",
    "problem_base_uri": "SAMO_PROBLEM_BASE_URI",
    "max_text_chars": "SAMO_MAX_TEXT_CHARS",
    "max_request_bytes": "SAMO_MAX_REQUEST_BYTES",
    "rate_limit_tiers": "SAMO_RATE_LIMIT_TIERS",
    "default_tier": "SAMO_DEFAULT_TIER",
    "token_requests_per_address": "SAMO_TOKEN_REQUESTS_PER_ADDRESS",
    "token_requests_per_key": "SAMO_TOKEN_REQUESTS_PER_KEY",
    "token_window_s": "SAMO_TOKEN_WINDOW_S",
    "failed_auth_limit": "SAMO_FAILED_AUTH_LIMIT",
    "failed_auth_window_s": "SAMO_FAILED_AUTH_WINDOW_S",
    "proxy_hops": "SAMO_PROXY_HOPS",
    "emotion_model": "SAMO_EMOTION_MODEL",
    "emotion_models": "SAMO_EMOTION_MODELS",
    "worker_emotion_models": "SAMO_WORKER_EMOTION_MODELS",
    "emotion_device": "SAMO_EMOTION_DEVICE",
    "emotion_int8": "SAMO_EMOTION_INT8",
    "emotion_engine": "SAMO_EMOTION_ENGINE",
    "emotion_onnx_quantisation": "SAMO_EMOTION_ONNX_QUANTISATION",
    "emotion_onnx_cache": "SAMO_EMOTION_ONNX_CACHE",
    "emotion_batch_size": "SAMO_EMOTION_BATCH_SIZE",
    "torch_threads": "SAMO_TORCH_THREADS",
    "requeue_after_s": "SAMO_REQUEUE_AFTER_S",
    "requeue_unpublished_after_s": "SAMO_REQUEUE_UNPUBLISHED_AFTER_S",
    "requeue_interval_s": "SAMO_REQUEUE_INTERVAL_S",
    "cpu_batch_max_size": "SAMO_CPU_BATCH_MAX_SIZE",
    "cpu_batch_max_wait_ms": "SAMO_CPU_BATCH_MAX_WAIT_MS",
    "gpu_batch_max_size": "SAMO_GPU_BATCH_MAX_SIZE",
    "gpu_batch_max_wait_ms": "SAMO_GPU_BATCH_MAX_WAIT_MS",
    "batch_max_tokens": "SAMO_BATCH_MAX_TOKENS",
    "batch_max_items": "SAMO_BATCH_MAX_ITEMS",
    "batch_max_bytes": "SAMO_BATCH_MAX_BYTES",
    "batches_in_flight": "SAMO_BATCHES_IN_FLIGHT",
    "auth_cache_ttl_s": "SAMO_AUTH_CACHE_TTL_S",
    "pass_overhead_tokens": "SAMO_PASS_OVERHEAD_TOKENS",
    "bulk_chunk_size": "SAMO_BULK_CHUNK_SIZE",
    "bulk_batch_size": "SAMO_BULK_BATCH_SIZE",
    "bulk_worker_nice": "SAMO_BULK_WORKER_NICE",
    "result_cache_ttl_s": "SAMO_RESULT_CACHE_TTL_S",
    "result_cache_secret": "SAMO_RESULT_CACHE_SECRET",
    "erasure_chunk_size": "SAMO_ERASURE_CHUNK_SIZE",
    "worker_metrics_port": "SAMO_WORKER_METRICS_PORT",
    "worker_ready_file": "SAMO_WORKER_READY_FILE",
    "readyz_requires_workers": "SAMO_READYZ_REQUIRES_WORKERS",
    "otel_enabled": "SAMO_OTEL_ENABLED",
    "otel_sample_ratio": "SAMO_OTEL_SAMPLE_RATIO",
    "otel_client_spans": "SAMO_OTEL_CLIENT_SPANS",
    "sentry_dsn": "SAMO_SENTRY_DSN",
    "sentry_environment": "SAMO_SENTRY_ENVIRONMENT",
    "media_dir": "SAMO_MEDIA_DIR",
    "media_ttl_s": "SAMO_MEDIA_TTL_S",
    "retention_interval_s": "SAMO_RETENTION_INTERVAL_S",
    "retention_chunk_size": "SAMO_RETENTION_CHUNK_SIZE",
    "max_upload_bytes": "SAMO_MAX_UPLOAD_BYTES",
    "max_audio_seconds": "SAMO_MAX_AUDIO_SECONDS",
    "max_document_chars": "SAMO_MAX_DOCUMENT_CHARS",
    "whisper_model": "SAMO_WHISPER_MODEL",
    "whisper_device": "SAMO_WHISPER_DEVICE",
    "whisper_compute_type": "SAMO_WHISPER_COMPUTE_TYPE",
    "whisper_vad": "SAMO_WHISPER_VAD",
    "whisper_cpu_threads": "SAMO_WHISPER_CPU_THREADS",
    "whisper_batched_threshold_s": "SAMO_WHISPER_BATCHED_THRESHOLD_S",
    "summary_model": "SAMO_SUMMARY_MODEL",
    "summary_device": "SAMO_SUMMARY_DEVICE",
    "summary_engine": "SAMO_SUMMARY_ENGINE",
    "summary_int8": "SAMO_SUMMARY_INT8",
    "preload_models": "SAMO_PRELOAD_MODELS",
    "job_type_plugins": "SAMO_JOB_TYPE_PLUGINS",
    "group_commit": "SAMO_GROUP_COMMIT",
    "secrets_key": "SAMO_SECRETS_KEY",
    "webhook_allowed_destinations": "SAMO_WEBHOOK_ALLOWED_DESTINATIONS",
    "webhook_connect_timeout_s": "SAMO_WEBHOOK_CONNECT_TIMEOUT_S",
    "webhook_timeout_s": "SAMO_WEBHOOK_TIMEOUT_S",
    "webhook_max_response_bytes": "SAMO_WEBHOOK_MAX_RESPONSE_BYTES",
    "webhook_retry_schedule_s": "SAMO_WEBHOOK_RETRY_SCHEDULE_S",
    "webhook_retry_jitter": "SAMO_WEBHOOK_RETRY_JITTER",
    "webhook_retry_after_max_s": "SAMO_WEBHOOK_RETRY_AFTER_MAX_S",
    "webhook_disable_after_failures": "SAMO_WEBHOOK_DISABLE_AFTER_FAILURES",
    "webhook_disable_after_s": "SAMO_WEBHOOK_DISABLE_AFTER_S",
    "webhook_secret_overlap_s": "SAMO_WEBHOOK_SECRET_OVERLAP_S",
    "webhook_progress_interval_s": "SAMO_WEBHOOK_PROGRESS_INTERVAL_S",
    "events_heartbeat_s": "SAMO_EVENTS_HEARTBEAT_S",
    "events_max_stream_s": "SAMO_EVENTS_MAX_STREAM_S",
    "events_retry_ms": "SAMO_EVENTS_RETRY_MS",
    "events_poll_interval_s": "SAMO_EVENTS_POLL_INTERVAL_S",
    "events_history_max": "SAMO_EVENTS_HISTORY_MAX",
    "events_history_ttl_s": "SAMO_EVENTS_HISTORY_TTL_S",
    "events_batch_progress_interval_s": "SAMO_EVENTS_BATCH_PROGRESS_INTERVAL_S",
    "insights_min_entries": "SAMO_INSIGHTS_MIN_ENTRIES",
    "shift_event_threshold": "SAMO_SHIFT_EVENT_THRESHOLD",
    "shift_event_window_days": "SAMO_SHIFT_EVENT_WINDOW_DAYS",
    "shift_event_baseline_days": "SAMO_SHIFT_EVENT_BASELINE_DAYS",
    "correlations_min_support": "SAMO_CORRELATIONS_MIN_SUPPORT",
}


def test_defaults_are_the_documented_ones():
    defaults = Settings()
    assert {f.name for f in dataclasses.fields(Settings)} == set(OLD_DEFAULTS)
    for name, value in OLD_DEFAULTS.items():
        assert getattr(defaults, name) == value, name
    assert (defaults.celery_broker_url, defaults.model_queue) == ("redis://127.0.0.1:6379/0", "cpu")
    assert defaults.batch_policy("gpu") == (128, 5.0) and defaults.batch_policy("cpu") == (32, 5.0)


def test_every_setting_declares_its_variable_help_group_and_type():
    fields = dataclasses.fields(Settings)
    assert {f.name: f.metadata["env"] for f in fields} == OLD_ENV_NAMES
    for f in fields:
        assert f.metadata["help"].strip() and "\n" not in f.metadata["help"], f.name
        assert f.metadata["group"] in GROUPS, f.name
        assert isinstance(f.metadata["secret"], bool), f.name
        assert f.type in PARSERS, f.name
    assert {f.name for f in fields if f.metadata["secret"]} == {"jwt_secret", "secrets_key", "sentry_dsn",
                                                                  "result_cache_secret"}


def test_fields_are_declared_group_by_group_in_the_documented_order():
    order = [f.metadata["group"] for f in dataclasses.fields(Settings)]
    groups = list(dict.fromkeys(order))
    assert groups == [g for g in GROUPS if g in groups]
    assert order == sorted(order, key=groups.index)


def test_unknown_group_is_refused_at_declaration():
    with pytest.raises(ValueError, match="SAMO_X: unknown settings group 'nope'"):
        setting(1, env="SAMO_X", help="x", group="nope")


def test_empty_environment_gives_the_defaults():
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"SAMO_NOT_A_SETTING": "1", "PATH": "/bin"}) == Settings()


def test_from_env_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("SAMO_MAX_TEXT_CHARS", "42")
    assert Settings.from_env().max_text_chars == 42


def test_strings_keep_an_empty_value():
    settings = Settings.from_env({"SAMO_DEFAULT_TIER": "pro", "SAMO_EMOTION_DEVICE": ""})
    assert (settings.default_tier, settings.emotion_device) == ("pro", "")


def test_numbers_and_empty_numbers():
    settings = Settings.from_env({"SAMO_MAX_TEXT_CHARS": "123", "SAMO_AUTH_CACHE_TTL_S": "2.5",
                                  "SAMO_MEDIA_TTL_S": "", "SAMO_MAX_AUDIO_SECONDS": ""})
    assert (settings.max_text_chars, settings.auth_cache_ttl_s) == (123, 2.5)
    assert (settings.media_ttl_s, settings.max_audio_seconds) == (3600, 600.0)


@pytest.mark.parametrize("raw, expected", [
    ("1", True), ("true", True), (" Yes ", True), ("ON", True),
    ("0", False), ("false", False), ("no", False), ("off", False), ("anything", False),
])
def test_booleans(raw, expected):
    assert Settings.from_env({"SAMO_GPU_WORKERS": raw}).gpu_workers_enabled is expected


def test_empty_boolean_keeps_the_default():
    assert Settings.from_env({"SAMO_EMOTION_INT8": ""}).emotion_int8 is True


def test_lists():
    settings = Settings.from_env({"SAMO_PRELOAD_MODELS": " emotion, ,transcribe ,",
                                  "SAMO_WEBHOOK_RETRY_SCHEDULE_S": "0, 1.5,60"})
    assert settings.preload_models == ("emotion", "transcribe")
    assert settings.webhook_retry_schedule_s == (0.0, 1.5, 60.0)


def test_empty_lists_are_empty():
    settings = Settings.from_env({"SAMO_PRELOAD_MODELS": "", "SAMO_WEBHOOK_RETRY_SCHEDULE_S": ""})
    assert settings.preload_models == () and settings.webhook_retry_schedule_s == ()


def test_rate_limit_tiers():
    tiers = Settings.from_env({"SAMO_RATE_LIMIT_TIERS": "a=1/2/3, b=4/5/6"}).rate_limit_tiers
    assert tiers == {"a": RateLimitTier("a", 1, 2, 3), "b": RateLimitTier("b", 4, 5, 6)}
    assert Settings.from_env({"SAMO_RATE_LIMIT_TIERS": ""}).rate_limit_tiers == Settings().rate_limit_tiers


def test_emotion_models_add_to_the_default_one():
    settings = Settings.from_env({"SAMO_EMOTION_MODEL": "/models/a", "SAMO_EMOTION_MODELS": "large=org/big, x=/b"})
    assert settings.emotion_model_refs == {"default": "/models/a", "large": "org/big", "x": "/b"}
    assert Settings.from_env({"SAMO_EMOTION_MODELS": "default=/c"}).emotion_model_refs == {"default": "/c"}
    assert Settings().emotion_model_refs == {"default": ""}
    assert Settings.from_env({"SAMO_EMOTION_MODELS": "large=x"}).batch_policy("gpu.large") == (128, 5.0)


def test_a_worker_refuses_emotion_models_that_are_not_configured():
    with pytest.raises(ValueError) as error:
        Settings.from_env({"SAMO_EMOTION_MODELS": "large=x", "SAMO_WORKER_EMOTION_MODELS": "default,huge"})
    assert str(error.value) == ("SAMO_WORKER_EMOTION_MODELS: unknown model(s) 'huge'; "
                                "SAMO_EMOTION_MODELS configures default, large")
    settings = Settings.from_env({"SAMO_EMOTION_MODELS": "large=x", "SAMO_WORKER_EMOTION_MODELS": "large"})
    assert settings.worker_emotion_models == ("large",)


@pytest.mark.parametrize("env, raw, expected", [
    ("SAMO_MAX_TEXT_CHARS", "abc", "an integer"),
    ("SAMO_MAX_TEXT_CHARS", "1.5", "an integer"),
    ("SAMO_WEBHOOK_TIMEOUT_S", "ten", "a number"),
    ("SAMO_WEBHOOK_RETRY_SCHEDULE_S", "1,x", "comma-separated numbers"),
    ("SAMO_RATE_LIMIT_TIERS", "free=1/2", "comma-separated name=requests/window_s/max_jobs_in_flight"),
    ("SAMO_RATE_LIMIT_TIERS", ",", "comma-separated name=requests/window_s/max_jobs_in_flight"),
    ("SAMO_EMOTION_MODELS", "large", "comma-separated key=hub id or path"),
    ("SAMO_EMOTION_MODELS", "Large=x", "comma-separated key=hub id or path"),
    ("SAMO_EMOTION_MODELS", "large=", "comma-separated key=hub id or path"),
    ("SAMO_EMOTION_MODELS", "a=x,a=y", "comma-separated key=hub id or path"),
])
def test_bad_values_name_the_variable_and_the_expected_type(env, raw, expected):
    with pytest.raises(ValueError) as error:
        Settings.from_env({env: raw})
    assert str(error.value) == f"{env}: expected {expected}, got {raw!r}"


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg2://samo:s3cr/et@db:5432/samo", "postgresql+psycopg2://samo:***@db:5432/samo"),
    ("redis://:pw@redis:6379/0", "redis://:***@redis:6379/0"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("postgresql://samo@db/samo", "postgresql://samo@db/samo"),
    ("redis://cache:6379/0?password=pw&db=1", "redis://cache:6379/0?password=***&db=1"),
    ("sentinel://:a@s1:26379;sentinel://:b@s2:26379", "sentinel://:***@s1:26379;sentinel://:***@s2:26379"),
])
def test_url_passwords_are_masked(url, shown):
    assert mask_url_passwords(url) == shown


def test_descriptions_mask_set_secrets_and_url_passwords():
    settings = dataclasses.replace(Settings(), jwt_secret="jwt-s3cret", database_url="postgresql://u:pw-s3cret@h/db")
    rows = {row.name: row for row in describe(settings)}
    assert rows["jwt_secret"].value == "***" and rows["jwt_secret"].default == ""
    assert rows["secrets_key"].value == ""
    assert rows["database_url"].value == "postgresql://u:***@h/db"
    assert rows["max_text_chars"].type == "integer" and rows["max_text_chars"].value == "10000"
    text = render_text(describe(settings))
    assert "s3cret" not in text and "SAMO_JWT_SECRET=***  (default: empty)" in text


def run_cli(*args, env=None):
    return CliRunner().invoke(cli, ["settings", *args], env=env or {}, catch_exceptions=False)


def test_cli_lists_current_values_grouped_with_secrets_masked():
    result = run_cli(env={"SAMO_MAX_TEXT_CHARS": "123", "SAMO_SECRETS_KEY": "key-s3cret",
                          "SAMO_REDIS_URL": "redis://:pw-s3cret@cache:6379/1"})
    assert result.exit_code == 0, result.output
    assert "SAMO_MAX_TEXT_CHARS=123  (default: 10000)" in result.output
    assert "SAMO_SECRETS_KEY=***" in result.output
    assert "SAMO_REDIS_URL=redis://:***@cache:6379/1" in result.output
    assert "s3cret" not in result.output
    assert f"SAMO_MEDIA_DIR={PROJECT_ROOT / 'instance' / 'media'}\n" in result.output
    headings = [line for line in result.output.splitlines() if line.startswith("# ")]
    assert headings == [f"# {title} [{group}]" for group, title in GROUPS.items()]


def test_cli_refuses_a_bad_value_with_exit_2():
    result = run_cli(env={"SAMO_BATCH_MAX_ITEMS": "many"})
    assert result.exit_code == 2
    assert "SAMO_BATCH_MAX_ITEMS: expected an integer, got 'many'" in result.output


def test_cli_markdown_is_the_docs_table():
    result = run_cli("--markdown", env={"SAMO_MAX_TEXT_CHARS": "123"})
    assert result.exit_code == 0 and result.output == render_markdown()
    assert "| `SAMO_MAX_TEXT_CHARS` | `10000` |" in result.output


def test_cli_writes_the_table_between_the_markers(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\n<!-- settings-table:begin -->\nstale\n<!-- settings-table:end -->\n\nafter\n")
    assert "rewritten" in run_cli("--write", str(doc)).output
    assert doc.read_text() == (f"# Title\n\n<!-- settings-table:begin -->\n{render_markdown()}\n"
                               "<!-- settings-table:end -->\n\nafter\n")
    assert "already up to date" in run_cli("--write", str(doc)).output


def test_replacing_needs_the_markers():
    with pytest.raises(ValueError, match="settings-table"):
        replace_table("no markers here", render_markdown())


def test_configuration_table_is_generated_from_the_declarations():
    readme = CONFIGURATION_DOC.read_text()
    assert replace_table(readme, render_markdown()) == readme, (
        "docs/configuration.md's settings table is stale: run python -m api.cli settings --write docs/configuration.md")
