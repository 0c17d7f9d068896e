"""Texts longer than the model reads, and texts scored sentence by sentence: the parts they are cut into.

The encoder reads ``max_length`` tokens (256 for the shipped model). A document is cut into
*windows*: runs of whole sentences (``workers.summarize.sentences``) of at most
:func:`window_chars` characters, each ``text[start:end]`` of the input; a sentence longer than
that is cut at a clause mark or space. With ``granularity: sentence`` the parts are the
sentences themselves. Either way every part is one input of the same length-sorted forward
passes as every other text of the batch.

The window size is estimated from characters, conservatively (:data:`CHARS_PER_TOKEN`); a
part the model still reports as truncated (text with many tokens per character, such as CJK
or emoji) is cut in halves and scored again (:func:`halves`), so nothing is silently left unread.

A document's probabilities are the length-weighted mean of its parts'
(``workers.emotion.results.weighted_probabilities``): ``p[l] = sum(len_i * p_i[l]) / sum(len_i)``,
``len_i`` the part's characters; its labels, top emotion and valence are then read from those
probabilities like any result's. A text that fits one window is one part, scored as it is.
"""
from __future__ import annotations

from dataclasses import dataclass

from workers.summarize.sentences import split_sentences

#: Characters per token the window size assumes; English averages about four per WordPiece token.
CHARS_PER_TOKEN = 3
#: The splitter's smallest run-on cut.
MIN_PART_CHARS = 20


@dataclass(frozen=True)
class Part:
    """``source[start:end]``, scored as one model input."""

    text: str
    start: int
    end: int

    @property
    def weight(self) -> int:
        return self.end - self.start


def window_chars(max_length: int) -> int:
    """Characters of one window: the model's tokens less the two special ones, times :data:`CHARS_PER_TOKEN`."""
    return max(MIN_PART_CHARS, (max_length - 2) * CHARS_PER_TOKEN)


def sentences(text: str, max_chars: int, offset: int = 0) -> list[Part]:
    """Each sentence of ``text`` (a run-on longer than ``max_chars`` cut in pieces), as parts of the source."""
    parts = [Part(s.text, s.start + offset, s.end + offset) for s in split_sentences(text, max_chars=max_chars)]
    return parts or [Part(text, offset, offset + len(text))]


def windows(text: str, max_chars: int, offset: int = 0) -> list[Part]:
    """Runs of whole sentences, each at most ``max_chars`` long; the whole text when it fits one window."""
    if len(text) <= max_chars:
        return [Part(text, offset, offset + len(text))]
    joined: list[Part] = []
    for sentence in sentences(text, max_chars):
        if joined and sentence.end - joined[-1].start <= max_chars:
            start = joined[-1].start
            joined[-1] = Part(text[start:sentence.end], start, sentence.end)
        else:
            joined.append(sentence)
    return [Part(part.text, part.start + offset, part.end + offset) for part in joined]


def halves(part: Part) -> list[Part]:
    """A part the model truncated, cut into windows of half its length; [] when it cannot be cut further."""
    limit = len(part.text) // 2
    if limit < MIN_PART_CHARS:
        return []
    pieces = windows(part.text, limit, offset=part.start)
    return pieces if len(pieces) > 1 else []
