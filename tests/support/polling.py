"""Waiting for jobs over real HTTP."""
from __future__ import annotations

import time

import requests

TERMINAL = {"succeeded", "failed", "canceled"}


def wait_for_job(base_url: str, job_id: str, headers: dict, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = requests.get(f"{base_url}/v1/jobs/{job_id}", headers=headers, timeout=10).json()
        if job["status"] in TERMINAL:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout_s}s")
        time.sleep(0.1)


def wait_until(predicate, timeout_s: float = 60, interval_s: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not met after {timeout_s}s")
        time.sleep(interval_s)
    return value
