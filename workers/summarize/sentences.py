"""Rule-based sentence splitting that keeps each sentence's character span in the input.

Spans matter because an extractive summary must quote the input exactly: the summariser
slices the original text instead of re-assembling tokens. Rules, in order:

* blank lines and list items (``-``, ``*``, ``•``, ``1.``) always start a new sentence;
* ``. ! ? …`` (and CJK ``。！？``) end a sentence when followed by whitespace and a word that
  does not start in lower case, or by the end of the text;
* a period after a known abbreviation (``Dr.``, ``e.g.``, ``Inc.``, ``No.`` before a number)
  or a single-letter initial (``J. Smith``) does not end a sentence; decimals never do;
* a "sentence" longer than ``max_chars`` (a transcript without punctuation, a huge list) is
  cut at the last clause mark or space before the limit, so one run-on cannot swallow the
  whole input.

No model and no NLTK data are involved, so splitting is instant and works offline.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt rev hon gen col capt lt sgt cmdr gov pres sen rep
    vs etc e.g i.e cf al approx est dept univ assn bros inc ltd co corp llc plc
    ed eds
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur fri sat sun
    u.s u.k u.n a.m p.m ph.d m.d b.a m.a
    """.split()
)

#: Abbreviations that only ever precede a number ("No. 5", "Fig. 2"): "No. Thanks." splits.
NUMBERED_ABBREVIATIONS = frozenset("no nos fig figs vol vols pp p ch sec art op".split())

_TERMINATOR = re.compile(r"(?:[.!?…]+|[。！？]+)[\"'”’)\]»]*")
_PARAGRAPH = re.compile(r"\n[ \t]*\n|\n(?=[ \t]*(?:[-*•·]|\d{1,3}[.)])[ \t]+)")
_CLAUSE_BREAK = re.compile(r"[;:,—–]\s")


@dataclass(frozen=True)
class Sentence:
    """One sentence: ``text`` is exactly ``source[start:end]``."""

    text: str
    start: int
    end: int


_NEXT_VISIBLE = re.compile(r"\S")
_LAST_WORD = re.compile(r"[\w.]+$")
_LOOKBEHIND = 40


def _ends_sentence(text: str, match: re.Match) -> bool:
    """Index arithmetic only (no slicing to the ends of ``text``): splitting stays linear."""
    mark, end = match.group(), match.end()
    if end == len(text) or mark[0] in "。！？":
        return True
    if not text[end].isspace():
        return False
    visible = _NEXT_VISIBLE.search(text, end)
    if visible is None:
        return True
    following = visible.group()
    if following.islower():
        return False
    if mark.rstrip("\"'”’)]»") != ".":
        return True
    window_start = max(0, match.start() - _LOOKBEHIND)
    word = _LAST_WORD.search(text, window_start, match.start())
    if word is None:
        return True
    token = word.group().lower()
    if token in ABBREVIATIONS:
        return False
    if token in NUMBERED_ABBREVIATIONS and following.isdigit():
        return False
    if token.isdigit():
        line_start = text.rfind("\n", 0, word.start()) + 1
        return bool(text[line_start : word.start()].strip())
    return not (len(token) == 1 and token.isalpha() and text[match.start() - 1].isupper())


def _spans(text: str) -> list[tuple[int, int]]:
    cuts = {0, len(text)}
    for match in _PARAGRAPH.finditer(text):
        cuts.add(match.end())
    for match in _TERMINATOR.finditer(text):
        if _ends_sentence(text, match):
            cuts.add(match.end())
    ordered = sorted(cuts)
    return list(zip(ordered, ordered[1:]))


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut a run-on at clause marks or spaces into pieces of at most ``max_chars``."""
    pieces = []
    while end - start > max_chars:
        window = text[start : start + max_chars]
        breaks = [m.end() for m in _CLAUSE_BREAK.finditer(window)]
        cut = breaks[-1] if breaks and breaks[-1] > max_chars // 3 else window.rfind(" ") + 1
        if cut <= max_chars // 3:
            cut = max_chars
        s, e = _trimmed(text, start, start + cut)
        if e > s:
            pieces.append((s, e))
        start += cut
    s, e = _trimmed(text, start, end)
    if e > s:
        pieces.append((s, e))
    return pieces


def split_sentences(text: str, max_chars: int | None = None) -> list[Sentence]:
    """Split ``text`` into sentences with their spans; pieces without letters or digits
    (stray punctuation, list bullets alone on a line) are merged into the previous sentence."""
    if max_chars is not None and max_chars < 20:
        raise ValueError("max_chars must be at least 20")
    spans: list[tuple[int, int]] = []
    for raw_start, raw_end in _spans(text):
        start, end = _trimmed(text, raw_start, raw_end)
        if end <= start:
            continue
        if not any(ch.isalnum() for ch in text[start:end]):
            if spans:
                spans[-1] = (spans[-1][0], end)
            continue
        if max_chars is not None and end - start > max_chars:
            spans.extend(_cut_long(text, start, end, max_chars))
        else:
            spans.append((start, end))
    return [Sentence(text[s:e], s, e) for s, e in spans]
