"""Summarisation jobs end to end with the default (offline, extractive MiniLM) summariser."""
from __future__ import annotations

import dataclasses

import pytest

from tests.support.http import post_job
from tests.support.polling import wait_for_job
from tests.support.texts import DIARY
from workers.summarize.sentences import split_sentences


def summarized(base_url, tenant, text, **options) -> dict:
    submitted = post_job(base_url, tenant.headers, text, "summarize", options)
    job = wait_for_job(base_url, submitted["id"], tenant.headers)
    assert job["status"] == "succeeded", job
    return job["result"]


def assert_quotes_the_input(result: dict, text: str) -> None:
    sentences = [s.text for s in split_sentences(text)]
    chosen = result["sentence_indices"]
    assert chosen == sorted(set(chosen))
    assert result["summary"] == " ".join(sentences[i] for i in chosen)
    assert all(sentences[i] in text for i in chosen)
    assert result["sentences_total"] == len(sentences)


@pytest.fixture
def tenant(make_tenant):
    return make_tenant()


@pytest.mark.parametrize(("options", "expected"), [({"sentences": 2}, 2), ({"ratio": 0.5}, 4), ({}, 3)])
def test_summaries_quote_the_input_at_the_requested_length(live_server, cpu_worker, tenant, options, expected):
    result = summarized(live_server, tenant, DIARY, **options)
    assert result["method"] == "extractive"
    assert len(result["sentence_indices"]) == expected
    assert_quotes_the_input(result, DIARY)
    assert 0 < result["compression_ratio"] < 1


def test_summaries_are_deterministic(live_server, cpu_worker, tenant):
    first = summarized(live_server, tenant, DIARY, sentences=3)
    again = summarized(live_server, tenant, DIARY, sentences=3)
    assert first == again


def test_a_one_sentence_text_is_its_own_summary(live_server, cpu_worker, tenant):
    text = "I finally finished the marathon and I am proud of myself."
    result = summarized(live_server, tenant, text, sentences=3)
    assert result["summary"] == text
    assert result["sentence_indices"] == [0]


def test_a_long_text_is_summarised_to_the_requested_length(live_server, cpu_worker, tenant, settings):
    topics = ["the garden", "the office", "my sister", "the train", "the budget", "the holiday"]
    text = " ".join(f"Entry {n}: today I thought about {topics[n % len(topics)]} for a while, "
                    f"and it made me feel {'calm' if n % 2 else 'restless'} all evening." for n in range(160))
    assert len(text) > settings.max_text_chars
    result = summarized(live_server, tenant, text, sentences=5)
    assert len(result["sentence_indices"]) == 5
    assert_quotes_the_input(result, text)
    assert result["compression_ratio"] < 0.05


@pytest.fixture
def worker_settings(settings, monkeypatch):
    """Run the task code in this process with a given summary model (no worker needed)."""
    import workers.models

    def configure(summary_model: str):
        configured = dataclasses.replace(settings, summary_model=summary_model)
        monkeypatch.setattr(workers.models, "_summarizer", None)
        return configured

    yield configure
    workers.models._summarizer = None


@pytest.fixture(scope="module")
def tiny_bart(tmp_path_factory):
    """A randomly initialised miniature BART (gibberish output) that loads offline."""
    import torch
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    from workers.summarize.extractive import bundled_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    config = BartConfig(
        vocab_size=tokenizer.vocab_size, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id, bos_token_id=tokenizer.cls_token_id,
        decoder_start_token_id=tokenizer.cls_token_id, forced_eos_token_id=tokenizer.sep_token_id,
        task_specific_params={"summarization": {"max_length": 12, "min_length": 6, "num_beams": 1}},
    )
    path = tmp_path_factory.mktemp("tiny-bart")
    torch.manual_seed(0)
    BartForConditionalGeneration(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_a_configured_seq2seq_model_writes_abstractive_summaries(worker_settings, tiny_bart):
    from tasks.summarize import summarize_text

    configured = worker_settings(str(tiny_bart))
    result, model = summarize_text(configured, DIARY, {})
    assert result["method"] == model.method == "abstractive"
    assert result["summary"] and result["sentence_indices"] == []


def test_a_text_too_long_for_the_seq2seq_model_is_summarised_extractively(worker_settings, tiny_bart):
    from tasks.summarize import summarize_text
    from workers.models import summarizer

    configured = worker_settings(str(tiny_bart))
    model = summarizer(configured)
    text = DIARY
    while len(model.chunk(text)) <= model.max_chunks:
        text += " " + DIARY
    result, _ = summarize_text(configured, text, {"sentences": 2})
    assert result["method"] == "extractive"
    assert len(result["sentence_indices"]) == 2


def test_an_unavailable_seq2seq_model_falls_back_to_extractive(worker_settings, tmp_path):
    from tasks.summarize import summarize_text

    configured = worker_settings(str(tmp_path / "no-such-model"))
    result, _ = summarize_text(configured, DIARY, {"sentences": 2})
    assert result["method"] == "extractive"


def test_a_worker_on_the_onnx_sentence_encoder_picks_what_torch_picks(settings, make_tenant, tmp_path):
    """On a stack of its own (the session's torch worker cannot take the job), the worker exports the
    encoder into an empty cache at start (preloaded), then serves the job."""
    from tests.support.stack import isolated_stack
    from workers.summarize.extractive import ExtractiveSummarizer

    env = {"SAMO_SUMMARY_ENGINE": "onnx", "SAMO_EMOTION_ONNX_CACHE": str(tmp_path), "SAMO_PRELOAD_MODELS": "summarizer"}
    with isolated_stack(settings, {"cpu": ("cpu",)}, extra_env=env) as stack:
        tenant = make_tenant()
        submitted = post_job(stack.base_url, tenant.headers, DIARY, "summarize", {"sentences": 3})
        job = wait_for_job(stack.base_url, submitted["id"], tenant.headers)
    assert job["status"] == "succeeded", job
    assert job["model"]["version"].endswith("-onnx-fp32")
    assert list(tmp_path.glob("*-fp32-*/model.onnx"))
    expected = ExtractiveSummarizer.load(device="cpu").summarize(DIARY, sentences=3)
    assert job["result"] == expected
    assert_quotes_the_input(job["result"], DIARY)
