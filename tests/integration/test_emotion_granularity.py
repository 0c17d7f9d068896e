"""Emotion results over real HTTP and a real worker: valence, the caller's controls, sentences with
their offsets, and a long entry read whole, window by window."""
from __future__ import annotations

import pytest

from tests.support.http import post_job
from tests.support.polling import wait_for_job
from workers.emotion.data import default_data_dir

TWO_FEELINGS = "I got the job and I'm thrilled. But my dog died this morning and I can't stop crying."
HAPPY = "This is the best day of my life, I am so happy and grateful for everyone!"
SAD = "I feel so sad and lonely today. I miss her terribly and I just want to cry."


def finished_job(base_url, tenant, text, options=None, job_type="emotion") -> dict:
    job = post_job(base_url, tenant.headers, text, job_type=job_type, options=options)
    done = wait_for_job(base_url, job["id"], tenant.headers, timeout_s=180)
    assert done["status"] == "succeeded", done
    return done


def result_of(base_url, tenant, text, options=None, job_type="emotion") -> dict:
    return finished_job(base_url, tenant, text, options, job_type)["result"]


def stored_scores(db_session, job_id: str) -> dict[str, tuple[float, bool]]:
    import uuid

    from sqlalchemy import select

    from db.models import EmotionScore

    rows = db_session.execute(select(EmotionScore.label, EmotionScore.probability, EmotionScore.above_threshold)
                              .where(EmotionScore.job_id == uuid.UUID(job_id))).all()
    return {label: (probability, above) for label, probability, above in rows}


def test_valence_is_positive_for_a_happy_text_and_negative_for_a_sad_one(live_server, cpu_worker, make_tenant):
    tenant = make_tenant()
    happy, sad = result_of(live_server, tenant, HAPPY), result_of(live_server, tenant, SAD)
    assert happy["valence"]["score"] > 0.5 and sad["valence"]["score"] < -0.5
    for result in (happy, sad):
        groups = result["valence"]["groups"]
        assert set(groups) == {"positive", "negative", "ambiguous", "neutral"}
        assert sum(groups.values()) == pytest.approx(1, abs=1e-4)
        assert result["valence"]["score"] == pytest.approx(groups["positive"] - groups["negative"], abs=1e-5)
    assert happy["valence"]["groups"]["positive"] > happy["valence"]["groups"]["negative"]


def test_the_callers_controls_shape_the_result(live_server, cpu_worker, make_tenant):
    tenant = make_tenant()
    full = result_of(live_server, tenant, TWO_FEELINGS)
    asked = result_of(live_server, tenant, TWO_FEELINGS, {"labels": ["sadness", "grief"], "threshold": 0.0,
                                                          "top_k": 1})
    assert set(asked["probabilities"]) == {"sadness", "grief"}
    assert asked["probabilities"]["sadness"] == full["probabilities"]["sadness"]
    assert asked["emotions"] == [asked["top_emotion"]]
    assert asked["valence"] == full["valence"]
    everything = result_of(live_server, tenant, TWO_FEELINGS, {"threshold": 0.0})
    assert len(everything["emotions"]) == 28


def test_the_callers_controls_leave_the_stored_scores_whole(live_server, cpu_worker, make_tenant, db_session):
    """Score rows feed the analytics: every label, above the tuned thresholds, whatever a caller chose to see."""
    tenant = make_tenant()
    full = finished_job(live_server, tenant, TWO_FEELINGS)
    narrowed = finished_job(live_server, tenant, TWO_FEELINGS, {"labels": ["grief"], "threshold": 0.0, "top_k": 1})
    assert list(narrowed["result"]["probabilities"]) == ["grief"]
    expected = stored_scores(db_session, full["id"])
    assert len(expected) == 28
    assert stored_scores(db_session, narrowed["id"]) == expected


def test_sentences_get_their_own_feelings_at_exact_offsets(live_server, cpu_worker, make_tenant):
    for job_type in ("emotion", "analyze"):
        result = result_of(live_server, make_tenant(), TWO_FEELINGS, {"granularity": "sentence"}, job_type)
        emotion = result if job_type == "emotion" else result["emotion"]
        first, second = emotion["sentences"]
        assert [TWO_FEELINGS[s["start"]:s["end"]] for s in (first, second)] == [first["text"], second["text"]]
        assert first["text"] == "I got the job and I'm thrilled."
        assert {"joy", "excitement"} & set(first["emotions"][:2]) and first["valence"]["score"] > 0
        assert {"sadness", "grief"} & set(second["emotions"][:2]) and second["valence"]["score"] < 0
        weights = [s["end"] - s["start"] for s in (first, second)]
        expected = (weights[0] * first["probabilities"]["joy"] + weights[1] * second["probabilities"]["joy"]) / sum(
            weights)
        assert emotion["probabilities"]["joy"] == pytest.approx(expected, abs=2e-6)
        assert emotion["granularity"] == "sentence" and emotion["truncated"] is False


def long_entry(words: int = 3000) -> str:
    """Dev texts joined into one entry of ``words`` words."""
    taken, entry = 0, []
    for line in (default_data_dir() / "dev.tsv").read_text(encoding="utf-8").splitlines():
        text = line.split("\t")[0].strip()
        if not text.endswith((".", "!", "?")):
            text += "."
        entry.append(text)
        taken += len(text.split())
        if taken >= words:
            break
    return " ".join(entry)


@pytest.fixture(scope="module")
def classifier(settings):
    from workers.models import load_emotion_classifier

    return load_emotion_classifier(settings)


def test_a_long_entry_is_read_whole_as_the_aggregate_of_its_windows(live_server, cpu_worker, make_tenant,
                                                                    classifier):
    from workers.emotion.documents import window_chars, windows

    text = long_entry()
    assert len(text.split()) >= 3000
    result = result_of(live_server, make_tenant(), text)
    parts = windows(text, window_chars(classifier.max_length))
    assert result["truncated"] is False and result["windows"] == len(parts) > 10
    scored = classifier.predict([part.text for part in parts])
    assert not any(answer["truncated"] for answer in scored)
    total = sum(part.end - part.start for part in parts)
    for label, probability in result["probabilities"].items():
        expected = sum((p.end - p.start) * s["probabilities"][label] for p, s in zip(parts, scored)) / total
        assert probability == pytest.approx(expected, abs=2e-3), label
    cut = result_of(live_server, make_tenant(), text, {"truncate": True})
    assert cut["truncated"] is True and cut["probabilities"] != result["probabilities"]
