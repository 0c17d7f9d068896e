"""ONNX export of the emotion classifier, cached on disk once per machine.

    python -m workers.emotion.export                  # the shipped model, int8 for CPU
    python -m workers.emotion.export --precision fp32 --cache-dir /tmp/onnx
    python -m workers.emotion.export --quantisation static --calibration 512

The recipe: ``torch.onnx.export`` of the fp32 network with eager attention (the traced graph the
fusions recognise), onnxruntime's transformer optimizer with the BERT fusions (embedding
LayerNorm, fused attention, bias-GELU, skip LayerNorm), then for CPU int8 quantisation:
``dynamic`` (int8 weights per channel, activations quantised per batch; the default) or
``static`` (activation scales calibrated on ``train.tsv`` rows, QDQ graph). fp16 conversion
replaces quantisation on CUDA.

A cache entry is a folder named by the model's weights digest, the options and the recipe's
format, holding ``model.onnx`` and ``manifest.json`` with the graph's sha256. Workers starting
together build it once: the first takes a file lock, the others wait on it and then find the
entry. An entry whose checksum does not match (a torn copy, a flipped byte) is rebuilt.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Bumped whenever the export recipe changes, so older cache entries are not reused.
EXPORT_FORMAT = "samo-emotion-onnx/1"
OPSET = 17
PRECISIONS = ("fp32", "int8", "fp16")
QUANTISATIONS = ("dynamic", "static")
#: How far an exported graph's probabilities may sit from torch fp32 on the same texts (dev rows in
#: tests/model/test_emotion_onnx.py): fp32 graphs differ only by float rounding; int8 ones by the
#: quantisation, bounded on average, at the 99th percentile, and in how often the top label changes.
FP32_TOLERANCE = 1e-4
INT8_TOLERANCE = {"mean": 0.01, "p99": 0.06, "same_top": 0.95}
#: transformers model types onnxruntime's optimizer has fusions for (others are exported unfused).
OPTIMIZER_MODEL_TYPES = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "bert",
                         "electra": "bert", "mpnet": "bert"}


class ExportFailed(RuntimeError):
    """The network could not be exported, optimised or quantised."""


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


def default_cache_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "instance" / "onnx"


def entry_dir(cache_dir: Path, name: str, weights_key: str, options: ExportOptions) -> Path:
    import onnxruntime

    recipe = hashlib.sha256(f"{EXPORT_FORMAT}|{OPSET}|{onnxruntime.__version__}|{options}".encode()).hexdigest()
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
    return cache_dir / f"{safe_name}-{weights_key[:16]}-{options.key()}-{recipe[:8]}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_graph(entry: Path) -> Path | None:
    """``entry/model.onnx`` if its manifest's checksum matches it, else None."""
    graph, manifest = entry / "model.onnx", entry / "manifest.json"
    if not graph.is_file() or not manifest.is_file():
        return None
    try:
        expected = json.loads(manifest.read_text(encoding="utf-8"))["sha256"]
    except (ValueError, KeyError):
        return None
    return graph if sha256_file(graph) == expected else None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_export(build_module: Callable[[], object], *, name: str, weights_key: str, options: ExportOptions,
                  cache_dir: Path, model_type: str = "bert", delta: bool = True,
                  calibration: Callable[[], list[tuple]] | None = None) -> Path:
    """The verified cached graph for these weights and options, exported first if it is missing or corrupt.

    ``build_module`` is only called when an export is needed, so a warm cache never loads the
    torch weights. ``calibration`` yields ``(input_ids, attention_mask)`` batches for static int8.
    """
    entry = entry_dir(cache_dir, name, weights_key, options)
    graph = verified_graph(entry)
    if graph is not None:
        return graph
    with file_lock(entry.with_name(entry.name + ".lock")):
        graph = verified_graph(entry)
        if graph is not None:
            return graph
        if entry.exists():
            log.warning("cached ONNX export %s fails its checksum; rebuilding it", entry.name)
            shutil.rmtree(entry)
        log.info("exporting %s to ONNX (%s) into %s", name, options.key(), entry)
        build(build_module(), entry, options, model_type=model_type, delta=delta, calibration=calibration)
        return entry / "model.onnx"


def build(module, entry: Path, options: ExportOptions, *, model_type: str, delta: bool,
          calibration: Callable[[], list[tuple]] | None) -> None:
    """Export, optimise and quantise into a temporary folder beside ``entry``, then move it in place."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        raw, optimised = work / "raw.onnx", work / "optimised.onnx"
        try:
            export_graph(module, raw, delta)
            optimise(raw, optimised, module, model_type, fp16=options.precision == "fp16")
            final = work / "model.onnx"
            if options.precision == "int8" and options.quantisation == "static":
                if calibration is None:
                    raise ExportFailed("static int8 needs calibration batches")
                quantise_static(optimised, final, calibration())
            elif options.precision == "int8":
                quantise_dynamic(optimised, final)
            else:
                optimised.replace(final)
        except ExportFailed:
            raise
        except Exception as error:  # noqa: BLE001 - exporter and optimizer errors have many types
            raise ExportFailed(f"{type(error).__name__}: {error}") from error
        for leftover in (raw, optimised):
            leftover.unlink(missing_ok=True)
        manifest = {"format": EXPORT_FORMAT, "sha256": sha256_file(final), "options": asdict(options)}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.replace(work, entry)
    finally:
        shutil.rmtree(work, ignore_errors=True)


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


def _use_eager_attention(module) -> None:
    """SDPA traces into a graph the attention fusion does not match; the eager path computes the same thing."""
    for child in module.modules():
        if hasattr(child, "set_attn_implementation") and hasattr(child, "config"):
            with contextlib.suppress(Exception):
                child.set_attn_implementation("eager")
                return


def export_graph(module, path: Path, delta: bool) -> None:
    import warnings

    import torch

    module = module.eval().float()
    _use_eager_attention(module)
    net = module if delta else _logits_only(module)
    ids = torch.ones((2, 8), dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    axes = {"input_ids": {0: "texts", 1: "tokens"}, "attention_mask": {0: "texts", 1: "tokens"},
            "logits": {0: "texts"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def _encoder_config(module):
    encoder = getattr(module, "encoder", None)
    return getattr(encoder, "config", None) or getattr(module, "config", None)


def optimise(source: Path, dest: Path, module, model_type: str, fp16: bool) -> None:
    """onnxruntime's transformer fusions where the architecture has them; the graph as exported otherwise."""
    import onnx
    from onnxruntime.transformers import optimizer

    config = _encoder_config(module)
    fusion_type = OPTIMIZER_MODEL_TYPES.get(model_type)
    if fusion_type is None or config is None:
        log.info("no transformer fusions for model type %r; the exported graph runs unfused", model_type)
        model = onnx.load(str(source))
        if fp16:
            from onnxruntime.transformers.float16 import convert_float_to_float16

            model = convert_float_to_float16(model, keep_io_types=True)
        onnx.save(model, str(dest))
        return
    optimised = optimizer.optimize_model(str(source), model_type=fusion_type, num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size, opt_level=0)
    if fp16:
        optimised.convert_float_to_float16(keep_io_types=True)
    fused = {op: n for op, n in optimised.get_fused_operator_statistics().items() if n}
    log.info("ONNX fusions: %s", ", ".join(f"{op} {n}" for op, n in sorted(fused.items())) or "none")
    optimised.save_model_to_file(str(dest))


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """onnxruntime's quantizer logs a line per tensor at INFO on the root logger; none of it is actionable."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(previous)


def quantise_dynamic(source: Path, dest: Path) -> None:
    """int8 weights per output channel; activations quantised per batch at run time."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_quantizer():
        quantize_dynamic(str(source), str(dest), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})


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

    with _quiet_quantizer():
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
