"""ONNX export of the emotion classifier, cached on disk once per machine.

    python -m workers.emotion.export                  # the shipped model, int8 for CPU
    python -m workers.emotion.export --precision fp32 --cache-dir /tmp/onnx
    python -m workers.emotion.export --quantisation static --calibration 512

The recipe is the shared one (``workers/onnx_export.py``: export with eager attention, BERT
fusions), then for CPU int8 quantisation: ``dynamic`` (int8 weights per channel, activations
quantised per batch; the default) or ``static`` (activation scales calibrated on ``train.tsv``
rows, QDQ graph). fp16 conversion replaces quantisation on CUDA. Entries live in the shared cache
(``workers/onnx_cache.py``: keyed by weights and options, built once under a lock, checksummed).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from workers.onnx_cache import (
    ExportFailed,
    cached_graph,
    default_cache_dir,
    sha256_file,
    staged_entry,
    verified_graph,
)
from workers.onnx_cache import entry_dir as cache_entry_dir
from workers.onnx_export import OPSET, export_graph, optimise, quantise_dynamic, quiet_quantizer

__all__ = ["ExportFailed", "ExportOptions", "cached_export", "default_cache_dir", "entry_dir", "sha256_file",
           "verified_graph"]

log = logging.getLogger(__name__)

#: Bumped whenever the export recipe changes, so older cache entries are not reused.
EXPORT_FORMAT = "samo-emotion-onnx/1"
PRECISIONS = ("fp32", "int8", "fp16")
QUANTISATIONS = ("dynamic", "static")
#: How far an exported graph's probabilities may sit from torch fp32 on the same texts (dev rows in
#: tests/model/test_emotion_onnx.py): fp32 graphs differ only by float rounding; int8 ones by the
#: quantisation, bounded on average, at the 99th percentile, and in how often the top label changes.
FP32_TOLERANCE = 1e-4
INT8_TOLERANCE = {"mean": 0.01, "p99": 0.06, "same_top": 0.95}


@dataclass(frozen=True)
class ExportOptions:
    precision: str = "int8"
    quantisation: str = "dynamic"
    calibration_rows: int = 256

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        if self.quantisation not in QUANTISATIONS:
            raise ValueError(f"quantisation must be one of {', '.join(QUANTISATIONS)}")

    def key(self) -> str:
        if self.precision != "int8":
            return self.precision
        if self.quantisation == "static":
            return f"int8-static{self.calibration_rows}"
        return "int8"


def entry_dir(cache_dir: Path, name: str, weights_key: str, options: ExportOptions) -> Path:
    return cache_entry_dir(cache_dir, name, weights_key, options.key(), export_format=EXPORT_FORMAT,
                           opset=OPSET, options=options)


def cached_export(build_module: Callable[[], object], *, name: str, weights_key: str, options: ExportOptions,
                  cache_dir: Path, model_type: str = "bert", delta: bool = True,
                  calibration: Callable[[], list[tuple]] | None = None) -> Path:
    """The verified cached graph for these weights and options, exported first if it is missing or corrupt.

    ``build_module`` is only called when an export is needed, so a warm cache never loads the
    torch weights. ``calibration`` yields ``(input_ids, attention_mask)`` batches for static int8.
    """
    entry = entry_dir(cache_dir, name, weights_key, options)
    return cached_graph(entry, lambda: build(build_module(), entry, options, model_type=model_type, delta=delta,
                                             calibration=calibration), f"{name} ({options.key()})")


def build(module, entry: Path, options: ExportOptions, *, model_type: str, delta: bool,
          calibration: Callable[[], list[tuple]] | None) -> None:
    """Export, optimise and quantise into a temporary folder beside ``entry``, then move it in place."""
    manifest = {"format": EXPORT_FORMAT, "options": asdict(options)}
    with staged_entry(entry, manifest) as work:
        raw, optimised, final = work / "raw.onnx", work / "optimised.onnx", work / "model.onnx"
        export_graph(module if delta else _logits_only(module), raw, "logits")
        optimise(raw, optimised, module, model_type, fp16=options.precision == "fp16")
        if options.precision == "int8" and options.quantisation == "static":
            if calibration is None:
                raise ExportFailed("static int8 needs calibration batches")
            quantise_static(optimised, final, calibration())
        elif options.precision == "int8":
            quantise_dynamic(optimised, final)
        else:
            optimised.replace(final)


def _logits_only(module):
    """A Hugging Face classifier called positionally, returning only its logits (what the graph outputs)."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    return LogitsOnly().eval()


def quantise_static(source: Path, dest: Path, batches: list[tuple]) -> None:
    """int8 weights and activations with scales calibrated on ``batches`` (QDQ format)."""
    from onnx import TensorProto
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter(batches)

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {"input_ids": batch[0], "attention_mask": batch[1]}

    with quiet_quantizer():
        quantize_static(str(source), str(dest), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=_head_nodes(source),
                        extra_options={"DefaultTensorType": TensorProto.FLOAT})


def _head_nodes(path: Path) -> list[str]:
    """The nodes that compute the graph's outputs (the classifier head), kept in float."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    outputs = {o.name for o in graph.output}
    produced = {out: node for node in graph.node for out in node.output}
    head, frontier = [], list(outputs)
    while frontier and len(head) < 4:
        node = produced.get(frontier.pop())
        if node is None or node.op_type not in ("MatMul", "Add", "Gemm"):
            continue
        head.append(node.name)
        frontier.extend(node.input)
    return head


def calibration_batches(clf, texts: list[str], batch_size: int = 16) -> list[tuple]:
    """Padded ``(input_ids, attention_mask)`` int64 batches of ``texts``, as the classifier would feed them."""
    ids, _ = clf._encode(texts)
    return [clf._pad(ids[start:start + batch_size]) for start in range(0, len(ids), batch_size)]


def main(argv: list[str] | None = None) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = argparse.ArgumentParser(description="Export the emotion model to ONNX into the worker's cache.")
    p.add_argument("--model", default=None, help="delta folder, hub id or path (default: the shipped model)")
    p.add_argument("--precision", choices=PRECISIONS, default="int8")
    p.add_argument("--quantisation", choices=QUANTISATIONS, default="dynamic")
    p.add_argument("--calibration", type=int, default=ExportOptions.calibration_rows,
                   help="train.tsv rows that calibrate static int8")
    p.add_argument("--cache-dir", type=Path, default=None, help="default: SAMO_EMOTION_ONNX_CACHE or instance/onnx")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from config.settings import Settings
    from workers.emotion.model import EmotionClassifier

    cache_dir = args.cache_dir or Path(Settings.from_env().emotion_onnx_cache or default_cache_dir())
    options = ExportOptions(args.precision, args.quantisation, args.calibration)
    clf = EmotionClassifier.load(args.model, device=args.device, engine="onnx", export_options=options,
                                 cache_dir=cache_dir, fallback=False)
    print(json.dumps({"graph": str(clf.onnx_path), "version": clf.version, "providers": clf.engine.providers}))
    return clf.onnx_path


if __name__ == "__main__":
    sys.exit(main() and 0)
