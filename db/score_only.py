"""Score-only mode: what a job with ``options.store_input: false`` keeps once it is finished.

Its input (a text, or an upload's description) is replaced by JSON null, and its result loses
every piece of text (a sentence's or segment's ``text``, a word, a summary) while scores, offsets,
times and metadata stay. Both happen in the UPDATE that stores the result (``db.jobs``), so no
committed state ever holds the text beside the scores; an audio job's upload is removed after
that commit as for every job (``tasks.lifecycle``). ``store_transcript: true`` keeps the result
of an audio job whole (its transcript and what was made of it); the input is dropped all the same.
"""
from __future__ import annotations

from collections.abc import Mapping

#: Keys whose string values are text of the entry.
TEXT_KEYS = frozenset({"text", "summary", "word"})


def keeps_input(options: Mapping | None) -> bool:
    return (options or {}).get("store_input") is not False


def keeps_result_text(options: Mapping | None, input_document: Mapping | None) -> bool:
    """True unless score-only mode applies to the result: a transcript is kept only when asked for."""
    if keeps_input(options):
        return True
    return bool((options or {}).get("store_transcript")) and "audio" in (input_document or {})


def without_text(value):
    """``value`` (a result document) with every string under a ``TEXT_KEYS`` key removed, at any depth."""
    if isinstance(value, dict):
        return {key: without_text(item) for key, item in value.items()
                if not (key in TEXT_KEYS and isinstance(item, str))}
    if isinstance(value, list):
        return [without_text(item) for item in value]
    return value


def stored_result(result: dict, options: Mapping | None, input_document: Mapping | None) -> dict:
    """The result as the job keeps it."""
    return result if keeps_result_text(options, input_document) else without_text(result)
