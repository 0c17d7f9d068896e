"""The web console in headless Chromium against gunicorn and a real worker: sign in, a text's emotions
arriving through its event stream, a 1,000-row batch's progress bar, a subject's chart data, and
every page free of console errors and CSP violations at 1280 and 390 px."""
from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
import requests

from tests.browser.conftest import screenshot, sign_in
from tests.support import audio
from tests.support.scored_entries import Entry, leaning, store_entries

TWO_FEELINGS = "I got the job and I'm thrilled. My grandmother died last night and I miss her."
PAGES = ("try", "jobs", "batches", "subjects", "webhooks")


def test_the_console_is_served_under_a_strict_policy(console_server):
    page = requests.get(console_server + "/console", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert "unsafe" not in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.text and " style=" not in page.text
    licences = requests.get(console_server + "/console/THIRD_PARTY_LICENSES", timeout=10)
    assert licences.status_code == 200 and "uplot" in licences.text
    assert requests.get(console_server + "/console/build-manifest.json", timeout=10).status_code == 404


def test_a_wrong_key_is_refused_and_a_right_one_signs_in_without_storing_it(watched_page, make_tenant):
    page = watched_page.page
    page.goto("/console")
    page.get_by_label("API key").fill("samo_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#sign-in-error:not([hidden])")
    assert page.locator("#nav").is_hidden()
    watched_page.errors = [error for error in watched_page.errors if "401" not in error]
    tenant = make_tenant()
    page.get_by_label("API key").fill(tenant.api_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#nav:not([hidden])")
    stored = page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]")
    assert stored == [0, 0, ""]
    assert tenant.api_key not in page.content()
    assert watched_page.problems() == []


def test_the_access_token_is_refreshed_before_it_expires(watched_page, make_tenant, settings):
    page = watched_page.page
    page.clock.install()
    sign_in(page, make_tenant().api_key)
    with page.expect_request(lambda request: request.url.endswith("/v1/auth/token")) as refresh:
        page.clock.run_for((settings.jwt_access_ttl_s - 20) * 1000)
    assert refresh.value.post_data_json["grant_type"] == "refresh_token"
    assert refresh.value.response().status == 200
    page.goto("/console#/webhooks")
    page.wait_for_selector("#page[data-page=webhooks] h2")
    page.wait_for_load_state("networkidle")
    assert page.locator("#nav").is_visible() and page.locator(".status.problem").count() == 0
    assert watched_page.problems() == []


def test_a_text_shows_its_emotions_without_a_reload(watched_page, make_tenant, console_worker, console_server,
                                                    live_events):
    page, tenant = watched_page.page, make_tenant()
    sign_in(page, tenant.api_key)
    page.evaluate("window.__notReloaded = true")
    page.get_by_label("Text", exact=True).fill(TWO_FEELINGS)
    page.get_by_label("Emotions per sentence (or segment)").check()
    page.get_by_role("button", name="Analyse text").click()
    result = page.wait_for_selector(".result[data-job-type=emotion]", timeout=180_000)
    assert page.evaluate("window.__notReloaded") is True
    job = requests.get(f"{console_server}/v1/jobs/{result.get_attribute('data-job-id')}", headers=tenant.headers,
                       timeout=10).json()
    expected = sorted(job["result"]["probabilities"].items(), key=lambda item: -item[1])[:5]
    bars = page.eval_on_selector_all(".bar", "bars => bars.map(b => [b.dataset.label, Number(b.dataset.probability)])")
    assert [label for label, _ in bars] == [label for label, _ in expected]
    assert [p for _, p in bars] == pytest.approx([p for _, p in expected])
    sentences = page.eval_on_selector_all(".sentence", "spans => spans.map(s => [s.textContent, s.className])")
    assert [text for text, _ in sentences] == [s["text"] for s in job["result"]["sentences"]]
    assert "valence-positive" in sentences[0][1] and "valence-negative" in sentences[1][1]
    screenshot(page, "try-result")
    assert watched_page.problems() == []


def test_a_recording_plays_with_its_transcript_following(watched_page, make_tenant, console_worker, console_server,
                                                        tmp_path, live_events):
    audio.require_audio_tools()
    parts = [audio.speak(sentence, tmp_path / f"part-{i}.wav") for i, sentence in enumerate(
        ["I am very happy with the progress we made this week.", "I feel sad and tired after the long night."])]
    recording = audio.concatenate(parts, tmp_path / "note.wav", gap_s=1.5)
    page, tenant = watched_page.page, make_tenant()
    sign_in(page, tenant.api_key)
    page.get_by_label("Recording").set_input_files(str(recording))
    page.get_by_role("button", name="Transcribe recording").click()
    result = page.wait_for_selector(".result[data-job-type=transcribe] .transcript-view", timeout=300_000)
    job = requests.get(f"{console_server}/v1/jobs/{page.get_attribute('.result', 'data-job-id')}",
                       headers=tenant.headers, timeout=10).json()
    segments = job["result"]["segments"]
    shown = page.eval_on_selector_all(".segment", "items => items.map(i => [Number(i.dataset.start), "
                                      "i.querySelector('.words').textContent, i.querySelector('.tag').textContent])")
    assert shown == [[s["start"], s["text"].strip(), s["emotion"]["top_emotion"]] for s in segments]
    assert result.query_selector("audio").get_attribute("src").startswith("blob:")
    last = segments[-1]
    page.eval_on_selector("audio", f"player => {{ player.currentTime = {(last['start'] + last['end']) / 2}; }}")
    page.wait_for_selector(".segment.current")
    current = page.eval_on_selector_all(".segment.current", "items => items.map(item => Number(item.dataset.start))")
    assert current == [last["start"]]
    screenshot(page, "try-transcript")
    assert watched_page.problems() == []


def write_csv(path, rows: int):
    lines = ["id,text"] + [f"{i},\"Entry {i}: {'a good day' if i % 2 else 'a hard day'} at work\"" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_1000_row_csv_fills_the_progress_bar(watched_page, make_tenant, console_worker, tmp_path, live_events):
    page = watched_page.page
    sign_in(page, make_tenant().api_key)
    page.goto("/console#/batches")
    page.get_by_label("Items (CSV with a text column, or JSONL)").set_input_files(str(write_csv(tmp_path / "items.csv",
                                                                                               1000)))
    page.evaluate("""() => { window.__progress = [];
      new MutationObserver(() => window.__progress.push(Number(document.getElementById('batch-progress').value)))
        .observe(document.getElementById('batch-progress'), {attributes: true}); }""")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_selector("#batch-progress[data-status=completed]", timeout=420_000)
    assert page.eval_on_selector("#batch-progress", "bar => bar.value") == 1
    assert page.inner_text("#batch-progress-text") == "100.0 %"
    seen = page.evaluate("window.__progress")
    assert seen == sorted(seen) and seen[-1] == 1
    assert any(0 < value < 1 for value in seen), f"the bar jumped to the end: {seen}"
    assert "succeeded 1000" in page.inner_text("#batch-counts")
    screenshot(page, "batches-done")
    assert watched_page.problems() == []


def seeded_days(today: datetime) -> list[tuple[datetime, str, int]]:
    """Ten past days at noon UTC: joyful entries on the first five, sad ones on the last five."""
    return [(datetime.combine(today - timedelta(days=10 - day), time(12), UTC), "joy" if day < 5 else "sadness",
             1 + day % 3) for day in range(10)]


def test_a_subjects_chart_holds_its_entries_per_day(watched_page, make_tenant, settings):
    page, tenant, rng = watched_page.page, make_tenant(), random.Random(18)
    days = seeded_days(datetime.now(UTC).date())
    entries = [Entry(occurred_at=at + timedelta(minutes=i), probabilities=leaning(rng, label), subject="user-7",
                     metadata={"tags": ["gym"] if label == "joy" else ["late"]})
               for at, label, count in days for i in range(count)]
    store_entries(settings.database_url, tenant.tenant_id, entries)
    sign_in(page, tenant.api_key)
    page.goto("/console#/subjects")
    page.get_by_label("Subject").fill("user-7")
    page.get_by_role("button", name="Show").click()
    page.wait_for_selector("#subject-chart[data-points='10'] canvas")
    chart = json.loads(page.get_attribute("#subject-chart", "data-chart"))
    assert chart["bucket"] == "day"
    assert chart["x"] == [at.replace(hour=0).timestamp() for at, _, _ in days]
    assert chart["entries"] == [count for _, _, count in days]
    assert set(chart["labels"][:2]) == {"joy", "sadness"}
    for index, (at, label, count) in enumerate(days):
        of_day = [entry.probabilities[label] for entry in entries if entry.occurred_at.date() == at.date()]
        assert chart["series"][label][index] == pytest.approx(sum(of_day) / count, abs=1e-3)
        assert (chart["valence"][index] > 0) == (label == "joy")
    drawn = page.evaluate("document.getElementById('subject-chart').samoChart.data.length")
    assert drawn == 2 + len(chart["labels"])
    page.wait_for_selector("#subject-insights li")
    words = page.inner_text("#subject-insights") + page.inner_text("main")
    assert "not an assessment or a diagnosis" in words
    for clinical in ("depress", "disorder", "symptom", "diagnosed"):
        assert clinical not in words.lower()
    screenshot(page, "subjects-chart")
    page.get_by_label("Per").select_option("week")
    page.get_by_role("button", name="Show").click()
    page.wait_for_selector("""#subject-chart[data-chart*='"bucket":"week"'] canvas""")
    weekly = json.loads(page.get_attribute("#subject-chart", "data-chart"))
    mondays = sorted({(at - timedelta(days=at.weekday())).replace(hour=0).timestamp() for at, _, _ in days})
    assert weekly["x"] == mondays and sum(weekly["entries"]) == len(entries)
    assert watched_page.problems() == []


def test_the_jobs_page_filters_shows_and_deletes_a_job(watched_page, make_tenant, settings, console_server):
    page, tenant, rng = watched_page.page, make_tenant(), random.Random(7)
    now = datetime.now(UTC)
    kept, deleted = store_entries(settings.database_url, tenant.tenant_id, [
        Entry(occurred_at=now - timedelta(hours=2), probabilities=leaning(rng, "joy"), subject="someone-else"),
        Entry(occurred_at=now - timedelta(hours=1), probabilities=leaning(rng, "gratitude"), subject="user-9")])
    sign_in(page, tenant.api_key)
    page.goto("/console#/jobs")
    page.wait_for_selector(f"tr[data-job-id='{kept}']")
    page.get_by_label("Subject").fill("user-9")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_selector(f"tr[data-job-id='{kept}']", state="detached")
    row = page.locator(f"tr[data-job-id='{deleted}']")
    assert row.locator(".job-status").inner_text() == "succeeded"
    row.get_by_role("button", name="Show").click()
    page.wait_for_selector("#job-detail .bar[data-label=gratitude]")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached")
    assert requests.get(f"{console_server}/v1/jobs/{deleted}", headers=tenant.headers, timeout=10).status_code == 404
    assert requests.get(f"{console_server}/v1/jobs/{kept}", headers=tenant.headers, timeout=10).status_code == 200
    assert watched_page.problems() == []


def test_a_queued_job_is_followed_live_and_canceled_from_the_jobs_page(watched_page, make_tenant, settings,
                                                                       console_server, live_events):
    """The job is stored queued and never published, so it waits until the page cancels it."""
    from db.models import Job, utcnow
    from db.session import session_scope

    page, tenant, job_id = watched_page.page, make_tenant(), uuid.uuid4()
    with session_scope(settings.database_url) as session:
        session.add(Job(id=job_id, tenant_id=tenant.tenant_id, type="emotion", queue="cpu",
                        input={"text": "synthetic"}, options={}, created_at=utcnow()))
    tickets = []
    page.on("request", lambda request: request.url.endswith("/v1/events/tickets") and tickets.append(
        request.post_data_json))
    sign_in(page, tenant.api_key)
    page.goto("/console#/jobs")
    row = page.locator(f"tr[data-job-id='{job_id}']")
    row.locator(".job-status[data-status=queued]").wait_for()
    for _ in range(300):  # the stream stays open, so the network never idles: wait for its ticket
        if tickets:
            break
        page.wait_for_timeout(100)
    assert tickets == [{"job_id": str(job_id)}]
    row.get_by_role("button", name="Cancel").click()
    row.locator(".job-status[data-status=canceled]").wait_for()
    assert row.get_by_role("button", name="Cancel").is_disabled()
    answer = requests.get(f"{console_server}/v1/jobs/{job_id}", headers=tenant.headers, timeout=10).json()
    assert answer["status"] == "canceled"
    assert watched_page.problems() == []


@pytest.mark.parametrize("name", PAGES)
def test_each_page_renders_cleanly_at_both_widths(watched_page, make_tenant, name):
    page = watched_page.page
    sign_in(page, make_tenant().api_key)
    page.goto(f"/console#/{name}")
    page.wait_for_selector(f"#page[data-page={name}] h2")
    page.wait_for_load_state("networkidle")
    assert page.get_attribute(f"#nav a[data-page={name}]", "aria-current") == "page"
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name} scrolls sideways at {width} px"
    screenshot(page, name)
    assert watched_page.problems() == []


def test_the_console_is_usable_from_the_keyboard(watched_page, make_tenant):
    page = watched_page.page
    page.goto("/console")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "api-key"
    page.keyboard.type(make_tenant().api_key)
    page.keyboard.press("Enter")
    page.wait_for_selector("#nav:not([hidden])")
    page.focus(".skip-link")
    focused = []
    for _ in range(6):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert focused[:6] == ["Try it", "Jobs", "Batches", "Subjects", "Webhooks", "Sign out"]
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#page[data-page=webhooks] h2")
    outline = page.evaluate("""() => { const link = document.querySelector('#nav a[data-page=webhooks]'); link.focus();
      return getComputedStyle(link).outlineStyle; }""")
    assert outline != "none"
    unlabelled = page.evaluate("""[...document.querySelectorAll('input, select, textarea')]
      .filter(e => !e.labels || !e.labels.length).map(e => e.id)""")
    assert unlabelled == []
    assert watched_page.problems() == []
