"""The rule-based splitter: exact spans, abbreviations, lists and run-on text."""
from __future__ import annotations

import pytest

from workers.summarize.sentences import split_sentences


def texts(source: str, **kwargs) -> list[str]:
    parts = split_sentences(source, **kwargs)
    for part in parts:
        assert source[part.start : part.end] == part.text
        assert part.text == part.text.strip()
    return [p.text for p in parts]


def test_plain_sentences():
    assert texts("One two three. Four five six! Seven eight? Nine") == [
        "One two three.",
        "Four five six!",
        "Seven eight?",
        "Nine",
    ]


def test_abbreviations_initials_and_decimals_do_not_split():
    source = "Dr. Smith paid $3.50 at 5 p.m. on Monday. He met J. K. Rowling, e.g. at the U.S. embassy."
    assert texts(source) == [
        "Dr. Smith paid $3.50 at 5 p.m. on Monday.",
        "He met J. K. Rowling, e.g. at the U.S. embassy.",
    ]


def test_numbered_abbreviations_only_before_numbers():
    assert texts("See Fig. 2 and No. 5 here. No. Thanks.") == ["See Fig. 2 and No. 5 here.", "No.", "Thanks."]


def test_lowercase_continuation_and_quotes():
    assert texts('He said "stop." Then he left... and came back. "Why?" she asked.') == [
        'He said "stop."',
        "Then he left... and came back.",
        '"Why?" she asked.',
    ]


def test_paragraphs_and_list_items():
    source = "Agenda:\n- Budget review\n- Hiring plan\n\n1. First item.\n2. Second item\nclosing words"
    assert texts(source) == [
        "Agenda:",
        "- Budget review",
        "- Hiring plan",
        "1. First item.",
        "2. Second item\nclosing words",
    ]


def test_cjk_terminators():
    assert texts("你好。今天很好！OK") == ["你好。", "今天很好！", "OK"]


def test_punctuation_only_pieces_join_the_previous_sentence():
    assert texts("Wait. ... Really.") == ["Wait. ...", "Really."]
    assert texts("   ") == [] and texts("") == []


def test_run_on_text_is_cut_at_clauses_or_spaces():
    run_on = "alpha beta, gamma delta; " * 100
    pieces = texts(run_on, max_chars=300)
    assert len(pieces) > 5 and all(len(p) <= 300 for p in pieces)
    words = texts("word " * 1000, max_chars=120)
    assert all(len(p) <= 120 for p in words)
    assert sum(len(p.split()) for p in words) == 1000
    with pytest.raises(ValueError):
        split_sentences("x", max_chars=5)
