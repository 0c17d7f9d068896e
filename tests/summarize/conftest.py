"""One loaded sentence encoder per session, sample texts, and tiny offline seq2seq models.

No real abstractive model can be downloaded here, so the abstractive tests run the real code
path on randomly initialised miniature BART/T5 models saved to a temporary folder, with the
MiniLM package's WordPiece tokenizer. Their output is gibberish; their shapes, lengths and
chunking are what is tested.
"""
from __future__ import annotations

import os
import random

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: Twelve sentences on three topics (council budget, a storm, a football match).
ARTICLE = (
    "The city council met on Tuesday evening to debate next year's budget. "
    "Council members argued for hours about funding for buses and trams. "
    "The mayor proposed doubling bus services in the northern districts. "
    "In the end the council approved the budget with only minor changes. "
    "Meanwhile, a powerful storm swept across the coast on Wednesday night. "
    "Strong winds knocked down trees and cut power to thousands of homes. "
    "Emergency crews worked through the night to clear the blocked roads. "
    "Electricity was restored to most households by Thursday afternoon. "
    "On Saturday the local football club won its first match of the season. "
    "The striker scored twice in the second half to secure the victory. "
    "Fans celebrated in the streets around the stadium until midnight. "
    "The coach praised the team's defence and its late comeback."
)

_WORDS = (
    "budget council transport school bus tax mayor residents plan repair route district "
    "funding money year storm wind power crews roads football match striker fans coach"
).split()


def long_text(min_chars: int, seed: int = 0) -> str:
    """Deterministic pseudo-prose of at least ``min_chars`` characters, 6-20 words a sentence."""
    rng = random.Random(seed)
    sentences, size = [], 0
    while size < min_chars:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 20))]
        sentence = " ".join(words).capitalize() + "."
        sentences.append(sentence)
        size += len(sentence) + 1
    return " ".join(sentences)


@pytest.fixture(scope="session")
def extractive():
    from workers.summarize.extractive import ExtractiveSummarizer

    return ExtractiveSummarizer.load()


def _save_tiny(model_cls, config, tokenizer, path):
    import torch

    torch.manual_seed(0)
    model_cls(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """``{"bart": dir, "t5": dir}``: miniature seq2seq models that load with from_pretrained."""
    from transformers import (
        AutoTokenizer,
        BartConfig,
        BartForConditionalGeneration,
        T5Config,
        T5ForConditionalGeneration,
    )

    from workers.summarize.extractive import bundled_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    root = tmp_path_factory.mktemp("tiny-seq2seq")
    special = dict(
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.cls_token_id,
    )
    summarization = {"summarization": {"max_length": 12, "min_length": 6, "num_beams": 1}}
    bart = BartConfig(
        vocab_size=tokenizer.vocab_size, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_position_embeddings=64, bos_token_id=tokenizer.cls_token_id,
        forced_eos_token_id=tokenizer.sep_token_id, task_specific_params=summarization, **special,
    )
    t5 = T5Config(
        vocab_size=tokenizer.vocab_size, d_model=16, d_kv=8, d_ff=32, num_layers=1,
        num_heads=2, **special,
    )
    return {
        "bart": _save_tiny(BartForConditionalGeneration, bart, tokenizer, root / "tiny-bart"),
        "t5": _save_tiny(T5ForConditionalGeneration, t5, tokenizer, root / "tiny-t5"),
    }
