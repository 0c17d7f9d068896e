"""Operator and client command line: ``.venv/bin/python -m api.cli --help`` from the repository root.

Settings are read from the environment when a command runs (not at import), so one process
can drive several configurations (tests do). Under ``make run`` the dev stack writes the
settings of its run to ``instance/dev-stack.env``; the CLI reads that file under the
environment, so a revocation reaches the stack's own database and Redis.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import click
from sqlalchemy.exc import IntegrityError

from api.cli_common import env_file_values
from api.cli_common import fail as _fail
from api.client_cli import COMMANDS as CLIENT_COMMANDS
from config.env_file import DEV_STACK_ENV_FILE, read_env_file
from config.settings import PROJECT_ROOT, Settings


def _environment() -> dict[str, str]:
    """The env file's variables, each overridden by the same variable set in the environment."""
    return {**env_file_values(), **os.environ}


def _settings() -> Settings:
    return Settings.from_env(_environment())


def _session_scope():
    from db.session import session_scope

    return session_scope(_settings().database_url)


def _find_tenant_or_fail(session, name_or_id: str):
    from db.api_keys import find_tenant

    tenant = find_tenant(session, name_or_id)
    if tenant is None:
        _fail(f"no tenant named or with id {name_or_id!r}")
    return tenant


def _when(value) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


@click.group()
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path),
              default=PROJECT_ROOT / "instance" / DEV_STACK_ENV_FILE, show_default=True,
              help="Settings for variables not set in the environment (`make run` writes this one); "
                   "ignored when absent.")
@click.pass_context
def cli(context: click.Context, env_file: Path) -> None:
    """SAMO Brain administration and job submission."""
    try:
        context.obj = read_env_file(env_file)
    except (OSError, ValueError) as error:
        _fail(f"cannot read {env_file}: {error}", 2)


# --- db ---------------------------------------------------------------------------------------

@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the latest schema revision."""
    from db.migrate import upgrade_to_head

    upgrade_to_head(_settings().database_url)
    click.echo("database is at the latest revision")


@db.command("check")
def db_check() -> None:
    """Exit 0 when the database is at this code's latest revision, 1 when it is not (yet) migrated."""
    from db.migrate import is_at_head

    if not is_at_head(_settings().database_url):
        _fail("database is not at the latest revision: run `db upgrade`")
    click.echo("database is at the latest revision")


# --- settings ---------------------------------------------------------------------------------

@cli.command("settings")
@click.option("--markdown", is_flag=True, help="Print the configuration table of the declared defaults instead.")
@click.option("--write", "write_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Regenerate the table between the settings-table markers of this file (docs/configuration.md).")
def settings_command(markdown: bool, write_path: str | None) -> None:
    """List every setting, grouped, with its current value from the environment (secrets masked)."""
    from pathlib import Path

    from config.settings_docs import describe, render_markdown, render_text, write_table

    if write_path:
        changed = write_table(Path(write_path))
        click.echo(f"{write_path}: settings table {'rewritten' if changed else 'already up to date'}")
    elif markdown:
        click.echo(render_markdown(), nl=False)
    else:
        try:
            current = _settings()
        except ValueError as error:
            _fail(str(error), 2)
        click.echo(render_text(describe(current)), nl=False)


# --- tenants ----------------------------------------------------------------------------------

@cli.group()
def tenants() -> None:
    """Tenants (the unit of isolation, rate-limit tier and billing)."""


@tenants.command("create")
@click.argument("name")
@click.option("--tier", default=None, help="Rate-limit tier (default: the configured default tier).")
def tenants_create(name: str, tier: str | None) -> None:
    """Create a tenant called NAME."""
    from db.api_keys import create_tenant

    config = _settings()
    tier = tier or config.default_tier
    if tier not in config.rate_limit_tiers:
        _fail(f"unknown tier {tier!r}; configured tiers: {', '.join(config.rate_limit_tiers)}", 2)
    try:
        with _session_scope() as session:
            tenant = create_tenant(session, name, tier)
            tenant_id = tenant.id
    except IntegrityError:
        _fail(f"a tenant named {name!r} already exists")
    click.echo(f"created tenant {name} (id {tenant_id}, tier {tier})")


@tenants.command("list")
def tenants_list() -> None:
    """List tenants with their tier and number of active keys."""
    from db.tenants import tenants_with_active_keys

    with _session_scope() as session:
        rows = tenants_with_active_keys(session)
        click.echo(f"{'ID':36}  {'TIER':12}  {'KEYS':>4}  {'CREATED':25}  NAME")
        for tenant, keys in rows:
            created = _when(tenant.created_at)
            click.echo(f"{str(tenant.id):36}  {tenant.tier:12}  {keys:>4}  {created:25}  {tenant.name}")



@tenants.command("set-retention")
@click.argument("tenant_ref", metavar="TENANT")
@click.argument("days", metavar="DAYS|none")
@click.option("--store-input/--no-store-input", default=None,
              help="The default of jobs' `options.store_input` (--no-store-input: score-only mode); "
                   "omitted: unchanged.")
def tenants_set_retention(tenant_ref: str, days: str, store_input: bool | None) -> None:
    """Keep TENANT's jobs DAYS days after submission (`none`: for ever); its existing jobs are rescheduled."""
    from api.auth.key_cache import announce_key_change
    from db.retention import set_tenant_policy

    if days.strip().lower() == "none":
        retention_days = None
    elif days.strip().isdigit() and int(days) >= 1:
        retention_days = int(days)
    else:
        _fail(f"DAYS must be a whole number of days (1 or more) or `none`, not {days!r}", 2)
    with _session_scope() as session:
        tenant = _find_tenant_or_fail(session, tenant_ref)
        rescheduled = set_tenant_policy(session, tenant, retention_days, store_input)
        name, kept, stored = tenant.name, tenant.retention_days, tenant.store_input
    # API processes hold each key's tenant policy with the key (api.auth.key_cache): they read it again now.
    announce_key_change(_settings().redis_url)
    click.echo(f"tenant {name}: retention {f'{kept} days' if kept else 'none (kept for ever)'}, "
               f"store_input {'true' if stored else 'false'}; {rescheduled} jobs rescheduled")

@cli.group()
def analytics() -> None:
    """Emotion rollups behind the timelines (db/rollups.py)."""


@analytics.command("rebuild")
@click.option("--tenant", "tenant_ref", default=None, help="Only this tenant (name or id); default: every tenant.")
def analytics_rebuild(tenant_ref: str | None) -> None:
    """Recompute the rollups from the stored per-label scores, in one transaction."""
    from db.rollups import rebuild

    with _session_scope() as session:
        tenant_id = _find_tenant_or_fail(session, tenant_ref).id if tenant_ref else None
        rows = rebuild(session, tenant_id)
    click.echo(f"rebuilt {rows} rollup rows" + (f" of tenant {tenant_ref}" if tenant_ref else ""))


# --- keys -------------------------------------------------------------------------------------

@cli.group()
def keys() -> None:
    """API keys (shown once at creation; only a digest is stored)."""


@keys.command("create")
@click.option("--tenant", "tenant_ref", required=True, help="Tenant name or id.")
@click.option("--scope", "scopes", multiple=True, help="Scope to grant (repeatable; default: all).")
@click.option("--name", default="", help="A label for the key.")
def keys_create(tenant_ref: str, scopes: tuple[str, ...], name: str) -> None:
    """Create a key; the key itself goes to stdout, everything else to stderr."""
    from db.api_keys import DEFAULT_SCOPES, create_api_key

    try:
        with _session_scope() as session:
            tenant = _find_tenant_or_fail(session, tenant_ref)
            issued = create_api_key(session, tenant, list(scopes) or DEFAULT_SCOPES, name)
            key, prefix, granted = issued.key, issued.record.prefix, issued.record.scopes
            tenant_name = tenant.name
    except ValueError as error:
        _fail(str(error), 2)
    click.echo(f"API key for tenant {tenant_name} (prefix {prefix}, scopes {' '.join(granted)}).", err=True)
    click.echo("Store it now: it will not be shown again.", err=True)
    click.echo(key)


@keys.command("list")
@click.option("--tenant", "tenant_ref", required=True, help="Tenant name or id.")
def keys_list(tenant_ref: str) -> None:
    """List a tenant's keys by prefix (the keys themselves are never stored)."""
    from db.tenants import tenant_keys

    with _session_scope() as session:
        tenant = _find_tenant_or_fail(session, tenant_ref)
        records = tenant_keys(session, tenant.id)
        click.echo(f"{'PREFIX':15}  {'STATUS':7}  {'CREATED':25}  {'LAST USED':25}  {'NAME':20}  SCOPES")
        for record in records:
            status = "active" if record.is_active else "revoked"
            click.echo(
                f"{record.prefix:15}  {status:7}  {_when(record.created_at):25}  "
                f"{_when(record.last_used_at):25}  {record.name or '-':20}  {' '.join(record.scopes or [])}"
            )


@keys.command("revoke")
@click.argument("prefix")
def keys_revoke(prefix: str) -> None:
    """Revoke the key with PREFIX (e.g. samo_1a2b3c4d); its tokens stop working too, at once on every API process."""
    from api.auth.key_cache import revoke_key

    record = revoke_key(_settings(), prefix)
    if record is None:
        _fail(f"no API key with prefix {prefix!r}")
    click.echo(f"revoked {prefix} at {_when(record.revoked_at)}")


# --- subjects ---------------------------------------------------------------------------------

@cli.group()
def subjects() -> None:
    """One end user's data: erase it or export it (recorded in the tenant's audit trail)."""


@subjects.command("erase")
@click.argument("tenant_ref", metavar="TENANT")
@click.argument("subject")
def subjects_erase(tenant_ref: str, subject: str) -> None:
    """Erase every job, score, rollup, media file, cache entry and delivery of SUBJECT, here and now.

    Runs the erasure in this process (an erasure already pending for the subject is continued).
    """
    import redis

    from db.audit import CLI_ACTOR
    from db.erasures import erasure_document, request_erasure, run_erasure
    from db.models import Erasure

    settings = _settings()
    with _session_scope() as session:
        tenant = _find_tenant_or_fail(session, tenant_ref)
        erasure, _ = request_erasure(session, tenant.id, subject, CLI_ACTOR)
        erasure_id = erasure.id
    run_erasure(settings, redis.Redis.from_url(settings.redis_url, socket_timeout=5), erasure_id)
    with _session_scope() as session:
        click.echo(json.dumps(erasure_document(session.get(Erasure, erasure_id))))


@subjects.command("export")
@click.argument("tenant_ref", metavar="TENANT")
@click.argument("subject")
@click.option("-o", "--output", type=click.File("w"), default="-", help="JSONL file to write; default: stdout.")
def subjects_export(tenant_ref: str, subject: str, output) -> None:
    """Write every job of SUBJECT as JSONL, oldest entry first, as `GET /v1/subjects/{subject}/export` does."""
    from db import audit
    from db.exports import count_subject_jobs, export_lines

    with _session_scope() as session:
        tenant = _find_tenant_or_fail(session, tenant_ref)
        tenant_id = tenant.id
        rows = count_subject_jobs(session, tenant_id, subject)
        audit.record(session, tenant_id, audit.SUBJECT_EXPORTED, audit.CLI_ACTOR, {"subject": subject}, rows)
    with _session_scope() as session:
        for line in export_lines(session, tenant_id, subject):
            output.write(line)
    click.echo(f"exported {rows} jobs of {subject!r}", err=True)


# --- jobs, transcribe, summarize, analyze, batches (over HTTP, through the SDK) -------------

for _command in CLIENT_COMMANDS:
    cli.add_command(_command)


if __name__ == "__main__":
    cli()
