"""Alembic migrations against real PostgreSQL and SQLite: the chain goes up and down, and head matches the models."""
from __future__ import annotations

import json
import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from db.migrate import alembic_config
from db.models import Base
from tests.support.services import temporary_database

SCORES_REDESIGN = "c41f0e9d7a52"


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'samo.db'}"
        return
    with temporary_database() as url:
        yield url


def schema_differences(database_url: str) -> list:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()


def test_the_chain_goes_down_and_up_again_and_head_matches_the_models(database_url):
    config = alembic_config(database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    assert schema_differences(database_url) == []


def seed_scores(engine) -> None:
    """A tenant, a job and two of its scores, written with plain SQL (the models are at head, the table is not)."""
    as_param = (lambda value: value.hex) if engine.dialect.name == "sqlite" else (lambda value: value)
    tenant, job = as_param(uuid.uuid4()), as_param(uuid.uuid4())
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO tenants (id, name, tier, created_at) "
                                "VALUES (:tenant, :name, 'free', CURRENT_TIMESTAMP)"),
                           {"tenant": tenant, "name": f"tenant-{uuid.uuid4().hex[:8]}"})
        connection.execute(text(
            "INSERT INTO jobs (id, tenant_id, type, status, queue, input, options, created_at, attempts) "
            "VALUES (:job, :tenant, 'emotion', 'succeeded', 'cpu', '{}', '{}', CURRENT_TIMESTAMP, 1)"),
            {"job": job, "tenant": tenant})
        for label, probability in (("joy", 0.9), ("anger", 0.01)):
            connection.execute(text(
                "INSERT INTO emotion_scores (job_id, tenant_id, label, probability, is_top, above_threshold, "
                "created_at) VALUES (:job, :tenant, :label, :p, :top, :top, CURRENT_TIMESTAMP)"),
                {"job": job, "tenant": tenant, "label": label, "p": probability, "top": label == "joy"})


def score_labels(engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.scalars(text("SELECT label FROM emotion_scores")))


def test_the_scores_redesign_keeps_every_row_both_ways(database_url):
    config = alembic_config(database_url)
    command.upgrade(config, f"{SCORES_REDESIGN}-1")
    engine = create_engine(database_url)
    try:
        seed_scores(engine)
        command.upgrade(config, SCORES_REDESIGN)
        assert score_labels(engine) == ["anger", "joy"]
        command.downgrade(config, f"{SCORES_REDESIGN}-1")
        assert score_labels(engine) == ["anger", "joy"]
        with engine.connect() as connection:
            assert sorted(connection.scalars(text("SELECT id FROM emotion_scores"))) == [1, 2]
    finally:
        engine.dispose()


def test_deleting_a_job_or_its_tenant_deletes_its_scores(database_url):
    command.upgrade(alembic_config(database_url), "head")
    engine = create_engine(database_url)
    try:
        seed_scores(engine)
        seed_scores(engine)
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            first_job = connection.scalar(text("SELECT job_id FROM emotion_scores ORDER BY job_id LIMIT 1"))
            connection.execute(text("DELETE FROM jobs WHERE id = :job"), {"job": first_job})
            assert connection.scalar(text("SELECT count(*) FROM emotion_scores")) == 2
            connection.execute(text("DELETE FROM tenants"))
            assert connection.scalar(text("SELECT count(*) FROM jobs")) == 0
            assert connection.scalar(text("SELECT count(*) FROM emotion_scores")) == 0
    finally:
        engine.dispose()


PRIVACY_SCOPES = "b7d2e4f61a90"


def test_keys_that_could_write_or_read_jobs_may_delete_them_or_export_and_read_the_audit_trail(database_url):
    config = alembic_config(database_url)
    command.upgrade(config, f"{PRIVACY_SCOPES}-1")
    engine = create_engine(database_url)
    before = {"writer": ["jobs:read", "jobs:write"], "reader": ["jobs:read"], "hooks": ["webhooks:manage"]}
    try:
        with engine.begin() as connection:
            tenant = uuid.uuid4().hex
            connection.execute(text("INSERT INTO tenants (id, name, tier, created_at) "
                                    "VALUES (:id, 't', 'free', CURRENT_TIMESTAMP)"), {"id": tenant})
            for name, scopes in before.items():
                connection.execute(text("INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, "
                                        "created_at) VALUES (:id, :tenant, :name, :name, :name, :scopes, "
                                        "CURRENT_TIMESTAMP)"),
                                   {"id": uuid.uuid4().hex, "tenant": tenant, "name": name,
                                    "scopes": json.dumps(scopes)})

        def scopes_now() -> dict:
            with engine.connect() as connection:
                rows = connection.execute(text("SELECT name, scopes FROM api_keys")).all()
            return {name: json.loads(scopes) if isinstance(scopes, str) else scopes for name, scopes in rows}

        command.upgrade(config, PRIVACY_SCOPES)
        assert scopes_now() == {"writer": ["audit:read", "jobs:delete", "jobs:read", "jobs:write", "subjects:export"],
                                "reader": ["audit:read", "jobs:read", "subjects:export"],
                                "hooks": ["webhooks:manage"]}
        command.downgrade(config, f"{PRIVACY_SCOPES}-1")
        assert scopes_now() == before
    finally:
        engine.dispose()
