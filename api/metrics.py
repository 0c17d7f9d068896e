"""Job metrics for Prometheus.

``samo_jobs_submitted_total{type}`` is a counter the jobs view bumps; under gunicorn it is
aggregated across worker processes through prometheus_client's multiprocess mode.
``samo_jobs{type,status}`` is read from the jobs table when scraped, not counted in memory: the
table is the truth across API replicas, worker crashes and restarts, and a GROUP BY is cheap
next to a scrape interval. Results are cached briefly so several scrapers cost one query.
``samo_webhook_deliveries{status}`` is read the same way from the deliveries table (the webhook
success rate of the dashboard and alerts: the growth of ``succeeded`` against ``failed`` and ``dead``).
"""
from __future__ import annotations

import logging
import threading
import time

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from db.models import JobStatus
from db.stats import job_counts_by_type_and_status, webhook_delivery_counts_by_status

log = logging.getLogger(__name__)

JOBS_SUBMITTED = Counter("samo_jobs_submitted_total", "Jobs accepted by the API, by job type.", ["type"])

COUNT_CACHE_S = 10.0
QUERY_TIMEOUT_MS = 2000


def record_job_submitted(job_type: str) -> None:
    """Call once per newly stored job (not for idempotent replays of an earlier one)."""
    JOBS_SUBMITTED.labels(type=job_type).inc()


class JobsCollector:
    """A custom collector: ``collect()`` runs at scrape time, in the scraping process."""

    def __init__(self, database_url: str, cache_s: float = COUNT_CACHE_S) -> None:
        self.database_url = database_url
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[tuple[str, str], int], dict[str, int]] | None = None

    def counts(self) -> dict[tuple[str, str], int]:
        return self._read()[1]

    def delivery_counts(self) -> dict[str, int]:
        return self._read()[2]

    def _read(self) -> tuple[float, dict[tuple[str, str], int], dict[str, int]]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self.cache_s:
                self._cached = (now, self._query(), self._query_deliveries())
            return self._cached

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def _query(self) -> dict[tuple[str, str], int]:
        rows = job_counts_by_type_and_status(self.database_url, QUERY_TIMEOUT_MS)
        counts: dict[tuple[str, str], int] = {}
        for job_type, status, number in rows:
            # Every status of a seen type is exported, zeros included, so rates and alerts
            # never see a series vanish when a status empties.
            for known in JobStatus:
                counts.setdefault((job_type, known.value), 0)
            status_value = status.value if isinstance(status, JobStatus) else str(status)
            counts[(job_type, status_value)] = number
        return counts

    def _query_deliveries(self) -> dict[str, int]:
        rows = webhook_delivery_counts_by_status(self.database_url, QUERY_TIMEOUT_MS)
        counts = dict.fromkeys(("pending", "succeeded", "failed", "dead"), 0)
        for status, number in rows:
            counts[getattr(status, "value", str(status))] = number
        return counts

    def collect(self):
        errors = GaugeMetricFamily(
            "samo_jobs_scrape_error", "1 if the job counts could not be read from the database."
        )
        try:
            counts = self.counts()
        except Exception as error:  # noqa: BLE001 - a database outage must not break the whole scrape
            log.warning("could not count jobs for /metrics: %s: %s", type(error).__name__, error)
            errors.add_metric([], 1)
            yield errors
            return
        errors.add_metric([], 0)
        yield errors
        family = GaugeMetricFamily("samo_jobs", "Jobs stored, by type and status.", labels=["type", "status"])
        for (job_type, status), number in sorted(counts.items()):
            family.add_metric([job_type, status], number)
        yield family
        deliveries = GaugeMetricFamily("samo_webhook_deliveries", "Webhook deliveries stored, by status.",
                                       labels=["status"])
        for status, number in sorted(self.delivery_counts().items()):
            deliveries.add_metric([status], number)
        yield deliveries
