"""Timelines over HTTP with a real worker: back-dated entries land in the right local day across a
daylight-saving change and in a +5:45 zone, and another tenant's subject of the same name is invisible."""
from __future__ import annotations

import math

import requests

from tests.support.polling import wait_for_job

#: America/New_York moves from -05:00 to -04:00 at 2026-03-08 02:00 local time.
ENTRIES = {
    "2026-03-07T23:30:00-05:00": "I am so grateful for my friends tonight.",
    "2026-03-08T00:15:00-05:00": "This is the worst day, I'm furious.",
    "2026-03-08T23:45:00-04:00": "Feeling calm and a little tired.",
    # 23:10 on the 8th at the old offset: only a zone-aware reading puts it on the 9th.
    "2026-03-09T00:10:00-04:00": "What a wonderful surprise, I love it!",
}
NEW_YORK_DAYS = {"2026-03-07": ["2026-03-07T23:30:00-05:00"],
                 "2026-03-08": ["2026-03-08T00:15:00-05:00", "2026-03-08T23:45:00-04:00"],
                 "2026-03-09": ["2026-03-09T00:10:00-04:00"]}


def submit_entries(base_url, tenant, subject, entries: dict) -> dict:
    jobs = {}
    for occurred_at, text in entries.items():
        body = {"type": "emotion", "input": {"text": text}, "subject": subject, "occurred_at": occurred_at}
        response = requests.post(f"{base_url}/v1/jobs", json=body, headers=tenant.headers, timeout=30)
        assert response.status_code == 202, response.text
        jobs[occurred_at] = response.json()["id"]
    return {occurred_at: wait_for_job(base_url, job_id, tenant.headers, timeout_s=180)
            for occurred_at, job_id in jobs.items()}


def timeline(base_url, tenant, path, **query) -> dict:
    response = requests.get(f"{base_url}{path}", params=query, headers=tenant.headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_entries_land_in_their_local_days_across_a_dst_change(live_server, cpu_worker, make_tenant):
    tenant, other = make_tenant(), make_tenant()
    done = submit_entries(live_server, tenant, "journal-1", ENTRIES)
    assert {job["status"] for job in done.values()} == {"succeeded"}
    submit_entries(live_server, other, "journal-1", {"2026-03-08T12:00:00-05:00": "Nothing much happened."})

    found = timeline(live_server, tenant, "/v1/subjects/journal-1/emotions", **{
        "from": "2026-03-01", "to": "2026-03-15", "bucket": "day", "tz": "America/New_York"})
    days = {bucket["start"][:10]: bucket for bucket in found["buckets"]}
    assert {day: bucket["entries"] for day, bucket in days.items()} == {day: len(e) for day, e in NEW_YORK_DAYS.items()}
    assert days["2026-03-08"]["start"] == "2026-03-08T00:00:00-05:00"
    assert days["2026-03-08"]["end"] == "2026-03-09T00:00:00-04:00"
    for day, occurred in NEW_YORK_DAYS.items():
        for label in ("joy", "anger", "gratitude"):
            expected = sum(done[o]["result"]["probabilities"][label] for o in occurred) / len(occurred)
            assert math.isclose(days[day]["mean_probabilities"][label], expected, abs_tol=1e-6)
        over = sum("anger" in done[o]["result"]["emotions"] for o in occurred) / len(occurred)
        assert math.isclose(days[day]["share_over_threshold"]["anger"], over, abs_tol=1e-6)
        assert math.isclose(sum(days[day]["valence"].values()), 1, abs_tol=1e-4)
    assert days["2026-03-07"]["top_emotions"][0]["label"] == "gratitude"

    kathmandu = timeline(live_server, tenant, "/v1/subjects/journal-1/emotions", **{
        "from": "2026-03-01", "to": "2026-03-15", "tz": "Asia/Kathmandu"})
    # +05:45: 04:30Z and 05:15Z on the 8th are the 8th there; 03:45Z and 04:10Z on the 9th, the 9th.
    assert {b["start"]: b["entries"] for b in kathmandu["buckets"]} == {
        "2026-03-08T00:00:00+05:45": 2, "2026-03-09T00:00:00+05:45": 2}

    theirs = timeline(live_server, other, "/v1/subjects/journal-1/emotions", **{
        "from": "2026-03-01", "to": "2026-03-15", "tz": "America/New_York"})
    assert [b["entries"] for b in theirs["buckets"]] == [1]

    weeks = timeline(live_server, tenant, "/v1/analytics/emotions", **{
        "from": "2026-03-02", "to": "2026-03-16", "bucket": "week", "tz": "America/New_York"})
    assert [(b["start"], b["entries"], b["subjects"]) for b in weeks["buckets"]] == [
        ("2026-03-02T00:00:00-05:00", 3, 1), ("2026-03-09T00:00:00-04:00", 1, 1)]
