"""The recipe that turns a transformer encoder into an ONNX graph, shared by every model with an ONNX engine.

``torch.onnx.export`` of the fp32 network with eager attention (the traced graph the fusions
recognise), onnxruntime's transformer optimizer with the BERT fusions (embedding LayerNorm, fused
attention, bias-GELU, skip LayerNorm), then optionally dynamic int8 quantisation (int8 weights per
channel, activations quantised per batch). The graph takes int64 ``input_ids`` and
``attention_mask`` of shape ``(texts, tokens)``; its one output is named by the caller.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

OPSET = 17
#: transformers model types onnxruntime's optimizer has fusions for (others are exported unfused).
OPTIMIZER_MODEL_TYPES = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "bert",
                         "electra": "bert", "mpnet": "bert"}


def use_eager_attention(module) -> None:
    """SDPA traces into a graph the attention fusion does not match; the eager path computes the same thing."""
    for child in module.modules():
        if hasattr(child, "set_attn_implementation") and hasattr(child, "config"):
            with contextlib.suppress(Exception):
                child.set_attn_implementation("eager")
                return


def export_graph(net, path: Path, output: str) -> None:
    """Trace ``net(input_ids, attention_mask)`` (positional, one tensor out) into ``path``."""
    import warnings

    import torch

    net = net.eval().float()
    use_eager_attention(net)
    ids = torch.ones((2, 8), dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    axes = {"input_ids": {0: "texts", 1: "tokens"}, "attention_mask": {0: "texts", 1: "tokens"},
            output: {0: "texts"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=[output], dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def encoder_config(module):
    encoder = getattr(module, "encoder", None)
    return getattr(encoder, "config", None) or getattr(module, "config", None)


def optimise(source: Path, dest: Path, module, model_type: str, fp16: bool) -> None:
    """onnxruntime's transformer fusions where the architecture has them; the graph as exported otherwise."""
    import onnx
    from onnxruntime.transformers import optimizer

    config = encoder_config(module)
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
def quiet_quantizer() -> Iterator[None]:
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

    with quiet_quantizer():
        quantize_dynamic(str(source), str(dest), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})
