"""What a score-only job keeps of its result, what a job document shows of it, and what a database error says."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from api.schemas.jobs import SummaryResult, Word
from db.score_only import keeps_result_text, stored_result, without_text
from db.session import get_engine

TRANSCRIPT = {
    "language": "en", "language_probability": 0.99, "duration_s": 3.2, "text": "I miss her. I am fine.",
    "segments": [{"id": 0, "start": 0.0, "end": 1.4, "text": "I miss her.",
                  "words": [{"word": "miss", "start": 0.2, "end": 0.5, "probability": 0.9}],
                  "emotion": {"top_emotion": "sadness"}}],
}
ANALYSIS = {"services": ["emotion", "summary"], "transcript": TRANSCRIPT,
            "emotion": {"top_emotion": "sadness", "probabilities": {"sadness": 0.7},
                        "sentences": [{"start": 0, "end": 11, "text": "I miss her.", "top_emotion": "sadness"}]},
            "summary": {"summary": "I miss her.", "method": "extractive", "sentence_indices": [0],
                        "sentences_total": 2, "compression_ratio": 0.5}}


def test_every_text_goes_and_every_score_offset_and_time_stays():
    kept = without_text(ANALYSIS)
    assert "miss" not in repr(kept)
    assert kept["emotion"]["sentences"] == [{"start": 0, "end": 11, "top_emotion": "sadness"}]
    assert kept["transcript"]["segments"][0]["words"] == [{"start": 0.2, "end": 0.5, "probability": 0.9}]
    assert kept["summary"] == {"method": "extractive", "sentence_indices": [0], "sentences_total": 2,
                               "compression_ratio": 0.5}
    assert kept["transcript"]["duration_s"] == 3.2 and kept["emotion"]["probabilities"] == {"sadness": 0.7}
    SummaryResult.model_validate(kept["summary"])
    Word.model_validate(kept["transcript"]["segments"][0]["words"][0])


@pytest.mark.parametrize("options, input_document, keeps", [
    ({}, {"text": "x"}, True),
    ({"store_input": True}, {"text": "x"}, True),
    ({"store_input": False}, {"text": "x"}, False),
    ({"store_input": False, "store_transcript": True}, {"audio": {"filename": "a.wav"}}, True),
    ({"store_input": False, "store_transcript": True}, {"text": "x"}, False),
])
def test_only_score_only_jobs_lose_their_texts(options, input_document, keeps):
    assert keeps_result_text(options, input_document) is keeps
    assert (stored_result(ANALYSIS, options, input_document) is ANALYSIS) is keeps


def test_a_database_error_does_not_quote_the_statement_parameters():
    with pytest.raises(OperationalError) as raised, get_engine("sqlite://").begin() as connection:
        connection.execute(text("INSERT INTO no_such_table VALUES (:entry)"), {"entry": "my private entry"})
    assert "my private entry" not in str(raised.value)
