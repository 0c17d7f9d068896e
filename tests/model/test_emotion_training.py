"""The training path stays runnable: a few steps on a small sample, then the artifact loads.

Also checks the LoRA export/merge arithmetic: a model with adapters and the plain base with
the exported delta merged in must compute the same logits.
"""
import json
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workers.emotion.data import base_model_dir, default_data_dir  # noqa: E402


def _encoder():
    from transformers import AutoModel

    return AutoModel.from_pretrained(base_model_dir(), local_files_only=True, add_pooling_layer=False)


def test_exported_delta_merges_into_identical_logits():
    from workers.emotion.network import MeanPoolClassifier, apply_delta, export_delta, inject_lora

    torch.manual_seed(0)
    adapted = MeanPoolClassifier(_encoder(), 5)
    inject_lora(adapted.encoder, rank=4, alpha=8, dropout=0.0)
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if name.endswith("lora_b") or "LayerNorm" in name:
                param.add_(torch.randn_like(param) * 0.02)
    merged = MeanPoolClassifier(_encoder(), 5)
    apply_delta(merged, export_delta(adapted))

    ids = torch.tensor([[101, 1045, 2293, 2009, 999, 102, 0, 0], [101, 2023, 2003, 2919, 1012, 1012, 999, 102]])
    mask = (ids != 0).long()
    adapted.eval(), merged.eval()
    with torch.no_grad():
        assert torch.allclose(adapted(ids, mask), merged(ids, mask), atol=1e-4)


def test_int8_weight_delta_of_a_full_fine_tune_merges_into_near_identical_logits():
    from workers.emotion.network import MeanPoolClassifier, apply_delta, export_delta, freeze_lower

    torch.manual_seed(0)
    tuned = MeanPoolClassifier(_encoder(), 5)
    names = freeze_lower(tuned.encoder, 1)
    base_state = {n: p.detach().clone() for n, p in tuned.encoder.named_parameters() if n in names}
    with torch.no_grad():
        for name, param in tuned.encoder.named_parameters():
            if name in names:
                param.add_(torch.randn_like(param) * 0.01)
    delta = export_delta(tuned, base_state)
    assert not any(k.startswith(("delta.embeddings", "delta.encoder.layer.0.")) for k in delta)
    assert delta["delta.encoder.layer.5.output.dense.weight.q"].dtype == torch.int8
    merged = MeanPoolClassifier(_encoder(), 5)
    apply_delta(merged, delta)

    ids = torch.tensor([[101, 1045, 2293, 2009, 999, 102, 0, 0], [101, 2023, 2003, 2919, 1012, 1012, 999, 102]])
    mask = (ids != 0).long()
    tuned.eval(), merged.eval()
    with torch.no_grad():
        assert torch.allclose(tuned(ids, mask), merged(ids, mask), atol=2e-3)


def test_a_few_training_steps_produce_a_loadable_artifact(tmp_path):
    from workers.emotion import train
    from workers.emotion.model import EmotionClassifier

    data = default_data_dir()
    if not (data / "train.tsv").is_file():
        pytest.skip(f"GoEmotions not found in {data} (set SAMO_GOEMOTIONS_DIR)")
    out = tmp_path / "artifact"
    argv = ["--data-dir", str(data), "--out", str(out), "--limit", "64", "--max-steps", "4",
            "--batch-size", "16", "--max-length", "48", "--device", "cpu", "--skip-int8-check"]
    result = train.train(train.parse_args(argv))
    assert result["n"] == 64
    assert {p.name for p in out.iterdir()} >= {"delta.safetensors", "config.json", "MODEL_CARD.md"}
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["steps"] == 4
    assert len(config["thresholds"]) == 28

    clf = EmotionClassifier.load(str(out), device="cpu")
    results = clf.predict(["thanks!", "what?"])
    assert len(results) == 2 and len(results[0]["probabilities"]) == 28

