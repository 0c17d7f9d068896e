"""Scoring transcripts against the text that was spoken."""
from __future__ import annotations

import re

import jiwer


def normalise(text: str) -> str:
    """Lower case, no punctuation but apostrophes, single spaces: what word error rate should compare."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    return jiwer.wer(normalise(reference), normalise(hypothesis))
