"""The CLI's client commands (``jobs``, ``transcribe``, ``summarize``, ``analyze``, ``batches``): the
Python SDK (``samo``, sdk/python) against the HTTP API, as any client would call it.

Exit codes: 0 success, 1 a failed job or an API error (its problem document on stderr), 2 a
usage error, 3 a timeout. Results are printed as JSON on stdout.
"""
from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from api.cli_common import env_file_values
from api.cli_common import fail as _fail
from config.job_types import JOB_TYPES

EXIT_JOB_FAILED = 1
EXIT_API_ERROR = 1
EXIT_TIMEOUT = 3
DEFAULT_API_URL = "http://127.0.0.1:5000"
#: More attempts than the SDK's default: a command waits out a rate limit within its --timeout.
SUBMIT_RETRIES = 10


def client_options(command):
    command = click.option("--api-url", default=lambda: env_file_values().get("SAMO_API_URL", DEFAULT_API_URL),
                           show_default=DEFAULT_API_URL, envvar="SAMO_API_URL", help="Base URL of the API.")(command)
    command = click.option("--api-key", envvar="SAMO_API_KEY", required=True,
                           help="API key (or set SAMO_API_KEY).")(command)
    return command


def wait_options(command):
    command = click.option("--wait/--no-wait", default=True, show_default=True,
                           help="Wait until the job (or batch) finishes.")(command)
    command = click.option("--timeout", default=120.0, show_default=True, type=float,
                           help="Seconds to wait in all (submission retries and waiting).")(command)
    return command


def json_option(name: str, help: str):
    def parse(_context, param, value):
        if value is None:
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise click.BadParameter(f"not JSON: {error}", param_hint=param.opts[0]) from None
    return click.option(name, callback=parse, default=None, help=help)


def entry_options(command):
    command = click.option("--subject", default=None, help="The app's id of the person the entry is about.")(command)
    command = click.option("--occurred-at", default=None, help="When the entry was written (RFC 3339).")(command)
    command = json_option("--metadata", "A JSON object of tags: strings or lists of strings.")(command)
    return json_option("--options", "The job's options, a JSON object.")(command)


@contextlib.contextmanager
def sdk_client(api_url: str, api_key: str, timeout: float) -> Iterator[Any]:
    """A ``samo.Client``; the SDK's errors become the CLI's messages and exit codes."""
    import samo

    try:
        with samo.Client(api_url, api_key, max_retries=SUBMIT_RETRIES, max_retry_wait_s=timeout) as client:
            yield client
    except samo.ProblemError as error:
        click.echo(json.dumps(error.body, indent=2), err=True)
        _fail(f"API answered {error.status}", EXIT_API_ERROR)
    except samo.APIConnectionError as error:
        _fail(str(error), EXIT_API_ERROR)
    except samo.WaitTimeout as error:
        if error.last is not None:
            emit(error.last)
        _fail(str(error), EXIT_TIMEOUT)


def emit(document: Any) -> None:
    if hasattr(document, "model_dump"):
        document = document.model_dump(mode="json", by_alias=True)
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def submit(api_url: str, api_key: str, wait: bool, timeout: float, **create: Any) -> None:
    """Submit one job, then print it at once or once it has finished (exit 1 unless it succeeded)."""
    deadline = time.monotonic() + timeout
    with sdk_client(api_url, api_key, timeout) as client:
        job = client.jobs.create(**{name: value for name, value in create.items() if value is not None})
        if not wait:
            emit(job)
            return
        job = client.jobs.wait(job, timeout=max(0.0, deadline - time.monotonic()))
    emit(job)
    if job.status != "succeeded":
        _fail(f"job {job.id} {job.status}", EXIT_JOB_FAILED)


def text_types() -> list[str]:
    return [entry.name for entry in JOB_TYPES.values() if entry.text]


AUDIO_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def jobs() -> None:
    """Submit and inspect jobs through the HTTP API."""


@jobs.command("submit")
@click.option("--text", required=True, help="The text to analyse.")
@click.option("--type", "job_type", type=click.Choice(text_types()), default="emotion", show_default=True,
              help="The job type (text types of the registry).")
@entry_options
@wait_options
@client_options
def jobs_submit(text: str, job_type: str, **fields: Any) -> None:
    """Submit a text job. Exit 0 on success, 1 if the job or API failed, 3 on timeout."""
    submit(type=job_type, text=text, **fields)


@jobs.command("get")
@click.argument("job_id")
@client_options
def jobs_get(job_id: str, api_url: str, api_key: str) -> None:
    """Print a job as JSON."""
    with sdk_client(api_url, api_key, 30.0) as client:
        emit(client.jobs.get(job_id))


@jobs.command("list")
@click.option("--status", default=None, help="Comma-separated statuses.")
@click.option("--type", "job_type", default=None, help="Only jobs of this type.")
@click.option("--subject", default=None, help="Only entries of this subject.")
@click.option("--max", "most", default=20, show_default=True, type=int, help="Print at most this many.")
@client_options
def jobs_list(status: str | None, job_type: str | None, subject: str | None, most: int, api_url: str,
              api_key: str) -> None:
    """Print jobs as JSON lines, newest first."""
    with sdk_client(api_url, api_key, 30.0) as client:
        for count, job in enumerate(client.jobs.list(status=status, type=job_type, subject=subject), 1):
            click.echo(job.model_dump_json(by_alias=True))
            if count >= most:
                break


@jobs.command("cancel")
@click.argument("job_id")
@client_options
def jobs_cancel(job_id: str, api_url: str, api_key: str) -> None:
    """Cancel a queued or running job and print it."""
    with sdk_client(api_url, api_key, 30.0) as client:
        emit(client.jobs.cancel(job_id))


@jobs.command("delete")
@click.argument("job_id")
@client_options
def jobs_delete(job_id: str, api_url: str, api_key: str) -> None:
    """Delete a job and what is stored of it."""
    with sdk_client(api_url, api_key, 30.0) as client:
        client.jobs.delete(job_id)
    click.echo(f"deleted job {job_id}", err=True)


@click.command("transcribe")
@click.argument("audio", type=AUDIO_FILE)
@entry_options
@wait_options
@client_options
def transcribe(audio: Path, **fields: Any) -> None:
    """Transcribe a recording (with emotion per segment) and print the job."""
    submit(type="transcribe", audio=audio, **fields)


@click.command("summarize")
@click.option("--text", required=True, help="The text to summarise.")
@entry_options
@wait_options
@client_options
def summarize(text: str, **fields: Any) -> None:
    """Summarise a text and print the job."""
    submit(type="summarize", text=text, **fields)


@click.command("analyze")
@click.argument("audio", type=AUDIO_FILE, required=False)
@click.option("--text", default=None, help="A text to analyse instead of a recording.")
@click.option("--services", default=None, help="Comma-separated: emotion, summary (default: both).")
@entry_options
@wait_options
@client_options
def analyze(audio: Path | None, text: str | None, services: str | None, **fields: Any) -> None:
    """Emotion and summary of a text (--text) or a recording (AUDIO), in one job."""
    if (audio is None) == (text is None):
        raise click.UsageError("Give a recording (AUDIO) or --text, not both.")
    chosen = [name.strip() for name in services.split(",") if name.strip()] if services else None
    submit(type="analyze", text=text, audio=audio, services=chosen, **fields)


@click.group()
def batches() -> None:
    """Upload batches of texts and read their results through the HTTP API."""


@batches.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "json"]), default=None,
              help="When the file's suffix does not say.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show an upload progress bar.")
@click.option("--wait/--no-wait", default=False, show_default=True, help="Wait until the batch has finished.")
@click.option("--timeout", default=600.0, show_default=True, type=float, help="Seconds to wait in all.")
@client_options
def batches_upload(path: Path, fmt: str | None, progress: bool, wait: bool, timeout: float, api_url: str,
                   api_key: str) -> None:
    """Upload a CSV, JSONL or JSON file of texts (streamed) and print the batch."""
    deadline = time.monotonic() + timeout
    with sdk_client(api_url, api_key, timeout) as client:
        batch = client.batches.upload(path, format=fmt, progress=progress)
        if wait:
            batch = client.batches.wait(batch, timeout=max(0.0, deadline - time.monotonic()))
        emit(batch)


@batches.command("get")
@click.argument("batch_id")
@client_options
def batches_get(batch_id: str, api_url: str, api_key: str) -> None:
    """Print a batch: counts by status, progress, estimated time left."""
    with sdk_client(api_url, api_key, 30.0) as client:
        emit(client.batches.get(batch_id))


@batches.command("results")
@click.argument("batch_id")
@client_options
def batches_results(batch_id: str, api_url: str, api_key: str) -> None:
    """Print the finished items as JSON lines, in row order."""
    with sdk_client(api_url, api_key, 30.0) as client:
        for line in client.batches.iter_results(batch_id):
            click.echo(line.model_dump_json(by_alias=True, exclude_none=True))


@batches.command("cancel")
@click.argument("batch_id")
@client_options
def batches_cancel(batch_id: str, api_url: str, api_key: str) -> None:
    """Cancel a running batch and its unfinished items."""
    with sdk_client(api_url, api_key, 30.0) as client:
        emit(client.batches.cancel(batch_id))


COMMANDS = (jobs, transcribe, summarize, analyze, batches)
