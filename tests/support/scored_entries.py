"""Entries stored with synthetic emotion results through the workers' own store (``db.jobs.complete_jobs``),
so their scores and rollups are exactly what a worker would have written, without running the model."""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from config.valence import LABELS
from db.jobs import JobOutcome, claim_jobs, complete_jobs
from db.models import Job, utcnow
from db.session import session_scope

THRESHOLD = 0.5


@dataclass(frozen=True)
class Entry:
    occurred_at: datetime
    probabilities: dict[str, float]
    subject: str | None = None
    metadata: dict | None = field(default=None)


def emotion_result(probabilities: dict[str, float]) -> dict:
    """A result shaped like the emotion model's: every label, those over the threshold, the top one."""
    top = max(probabilities, key=probabilities.get)
    return {"probabilities": probabilities, "top_emotion": top,
            "emotions": [label for label, p in probabilities.items() if p >= THRESHOLD]}


def leaning(rng: random.Random, label: str, strength: float = 0.75) -> dict[str, float]:
    """Probabilities where ``label`` is high and the rest low, with some noise."""
    probabilities = {other: round(rng.uniform(0.0, 0.06), 4) for other in LABELS}
    probabilities["neutral"] = round(rng.uniform(0.05, 0.2), 4)
    probabilities[label] = round(min(0.99, max(0.0, rng.gauss(strength, 0.08))), 4)
    return probabilities


def store_entries(database_url: str, tenant_id: uuid.UUID, entries: list[Entry],
                  text: str = "synthetic") -> list[uuid.UUID]:
    """Each entry as a succeeded emotion job of ``tenant_id`` (its input ``text``); returns their ids."""
    now, ids = utcnow(), [uuid.uuid4() for _ in entries]
    jobs = [Job(id=job_id, tenant_id=tenant_id, type="emotion", queue="cpu", input={"text": text},
                options={}, created_at=now, subject=entry.subject, occurred_at=entry.occurred_at,
                entry_metadata=entry.metadata) for job_id, entry in zip(ids, entries, strict=True)]
    with session_scope(database_url) as session:
        session.add_all(jobs)
    with session_scope(database_url) as session:
        claimed = {job.id: job for job in claim_jobs(session, Job.id.in_(ids))}
        outcomes = []
        for job_id, entry in zip(ids, entries, strict=True):
            result = emotion_result(entry.probabilities)
            outcomes.append((claimed[job_id], JobOutcome(result=result, model_name="synthetic", emotion=result)))
        complete_jobs(session, outcomes)
    return ids
