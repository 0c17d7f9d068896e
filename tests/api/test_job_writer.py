"""The group-commit writer (api/fastpath/job_writer.py) against the session's database."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from api.fastpath.job_writer import JobWriter
from api.intake.submissions import Submission
from api.views.jobs import new_job_row
from db.models import Job, JobStatus, utcnow
from db.session import get_engine

JOB_COLUMNS = tuple(column.key for column in Job.__table__.columns)


def job_row(job: Job) -> dict:
    """Every column of a (transient) job, as the writer takes a row."""
    return {key: getattr(job, key) for key in JOB_COLUMNS}


def new_job(tenant_id: uuid.UUID, key: str | None = None) -> Job:
    now = utcnow()
    return Job(id=uuid.uuid4(), tenant_id=tenant_id, type="emotion", status=JobStatus.QUEUED, queue="cpu",
               input={"text": "hello"}, options={}, idempotency_key=key, request_hash="h", attempts=0,
               created_at=now, enqueued_at=now)


class RecordingPublisher:
    """Publishes nothing; records each call, and holds the first one until released."""

    def __init__(self, succeed: bool = True):
        self.calls: list[list[uuid.UUID]] = []
        self.first_call = threading.Event()
        self.release = threading.Event()
        self.succeed = succeed

    def __call__(self, jobs):
        self.calls.append([job[0] for job in jobs])
        if len(self.calls) == 1:
            self.first_call.set()
            self.release.wait(10)
        return self.succeed


@pytest.fixture
def tenant_id(make_tenant):
    return make_tenant().tenant_id


def write_in_threads(writer: JobWriter, jobs: list[Job]) -> tuple[dict[uuid.UUID, object], list[threading.Thread]]:
    outcomes: dict[uuid.UUID, object] = {}

    def write(job: Job) -> None:
        try:
            outcomes[job.id] = writer.write(job_row(job))
        except IntegrityError as error:
            outcomes[job.id] = error

    threads = [threading.Thread(target=write, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    return outcomes, threads


def test_rows_waiting_together_share_one_insert_and_one_publish(settings, db_session, tenant_id):
    publisher = RecordingPublisher()
    writer = JobWriter(get_engine(settings.database_url), publisher)
    first = new_job(tenant_id)
    outcomes, threads = write_in_threads(writer, [first])
    assert publisher.first_call.wait(10)
    waiting = [new_job(tenant_id) for _ in range(12)]
    more, more_threads = write_in_threads(writer, waiting)
    time.sleep(0.3)  # all twelve are queued behind the held first group
    publisher.release.set()
    for thread in threads + more_threads:
        thread.join(10)
    assert outcomes == {first.id: True} and set(more.values()) == {True}
    assert len(publisher.calls) == 2 and publisher.calls[0] == [first.id]
    assert set(publisher.calls[1]) == {job.id for job in waiting}
    stored = db_session.scalar(select(func.count()).select_from(Job).where(Job.tenant_id == tenant_id))
    assert stored == 13


def test_a_reused_idempotency_key_fails_alone(settings, db_session, tenant_id):
    publisher = RecordingPublisher()
    writer = JobWriter(get_engine(settings.database_url), publisher)
    outcomes, threads = write_in_threads(writer, [new_job(tenant_id)])
    assert publisher.first_call.wait(10)
    original, duplicate = new_job(tenant_id, key="k-1"), new_job(tenant_id, key="k-1")
    others = [new_job(tenant_id) for _ in range(3)]
    more, more_threads = write_in_threads(writer, [original, *others, duplicate])
    time.sleep(0.3)
    publisher.release.set()
    for thread in threads + more_threads:
        thread.join(10)
    failed = [job for job in (original, duplicate) if isinstance(more[job.id], IntegrityError)]
    assert len(failed) == 1  # whichever of the two reached the writer second
    kept = [job for job in (original, duplicate, *others) if job is not failed[0]]
    assert all(more[job.id] is True for job in kept)
    assert set(publisher.calls[-1]) == {job.id for job in kept}
    stored = set(db_session.scalars(select(Job.id).where(Job.tenant_id == tenant_id)))
    assert failed[0].id not in stored and {job.id for job in kept} <= stored


def test_a_failed_publish_leaves_the_rows_stored_for_the_sweep(settings, db_session, tenant_id):
    publisher = RecordingPublisher(succeed=False)
    publisher.release.set()
    writer = JobWriter(get_engine(settings.database_url), publisher)
    job = new_job(tenant_id)
    assert writer.write(job_row(job)) is False
    stored = db_session.get(Job, job.id)
    assert stored is not None and stored.status == JobStatus.QUEUED and stored.enqueued_at is None


def test_a_new_job_row_names_every_column_of_the_jobs_table(app):
    """The writer inserts the submission's row as it is: a column missing from it would be NULL."""
    with app.app_context():
        row = new_job_row(Submission("emotion", {"text": "hi"}, {}, "f" * 64), uuid.uuid4(), None)
    assert set(row) == set(JOB_COLUMNS)
    assert job_row(Job(**row)) == row


def test_every_value_of_a_row_is_stored_as_given(settings, db_session, tenant_id):
    """The group travels as one JSON document (``RecordsetInsert``): each column must read back
    with its own type, nested and non-ASCII JSON, microseconds and NULLs included."""
    publisher = RecordingPublisher()
    publisher.release.set()
    writer = JobWriter(get_engine(settings.database_url), publisher)
    job = new_job(tenant_id, key="ключ-🔑")
    job.input = {"text": "Ünïcode \"quoted\" \\ and\nnewline 🎉", "nested": [1, 2.5, None, {"a": True}]}
    job.options = {"top_k": 3, "threshold": 0.25}
    job.created_at = job.created_at.replace(microsecond=123456)
    row = job_row(job)
    assert writer.write(row) is True
    db_session.expire_all()
    assert job_row(db_session.get(Job, job.id)) == row


def test_an_integer_orjson_refuses_is_stored_whole(settings, db_session, tenant_id):
    publisher = RecordingPublisher()
    publisher.release.set()
    writer = JobWriter(get_engine(settings.database_url), publisher)
    job = new_job(tenant_id)
    job.options = {"seed": 2**70}
    assert writer.write(job_row(job)) is True
    db_session.expire_all()
    assert db_session.get(Job, job.id).options == {"seed": 2**70}
