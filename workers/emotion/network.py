"""The default model's network: the base encoder, mean pooling, a linear head, and the delta.

all-MiniLM-L6-v2 was trained with mean pooling, so the classifier pools the same way
(attention-mask weighted) instead of reading the [CLS] token, which this encoder never
learnt to fill.

Only a delta over the pip-installed base is shipped, in one of two forms:

* ``full`` (default): the upper transformer layers are fine-tuned outright; each weight
  matrix ships as ``W_tuned - W_base`` quantised to int8 per output row (a fine-tuning
  delta is small and evenly spread, so 8 bits lose nothing measurable), biases and
  LayerNorms as fp32. The word embeddings (half the model) and the lowest layer stay
  frozen, which is what keeps the delta under 10 MB.
* ``lora``: low-rank adapters (our own small LoRA, so inference needs no peft) plus the
  LayerNorms. Smaller, but it learnt much more slowly on this task in our runs.

``apply_delta`` merges either form into the base weights when a worker starts, so inference
runs a plain BertModel whose Linear layers int8 dynamic quantisation can convert.
"""
from __future__ import annotations

import math

import torch
from torch import nn

LORA_TARGETS = ("query", "key", "value", "dense")


class LoRALinear(nn.Module):
    """``base(x) + scale * B(A(dropout(x)))`` with the base Linear frozen and B starting at zero."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_a.T @ self.lora_b.T) * self.scale


def inject_lora(encoder: nn.Module, rank: int, alpha: float, dropout: float,
                targets: tuple[str, ...] = LORA_TARGETS) -> list[str]:
    """Freeze ``encoder`` and wrap every Linear whose attribute name is in ``targets``.

    Returns the dotted names of the wrapped Linear modules. LayerNorms are left trainable:
    they are tiny and let the encoder re-centre features for the new task.
    """
    for param in encoder.parameters():
        param.requires_grad_(False)
    wrapped = []
    for name, module in list(encoder.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in targets and isinstance(child, nn.Linear):
                setattr(module, child_name, LoRALinear(child, rank, alpha, dropout))
                wrapped.append(f"{name}.{child_name}" if name else child_name)
    for name, param in encoder.named_parameters():
        if "LayerNorm" in name:
            param.requires_grad_(True)
    return wrapped


class MeanPoolClassifier(nn.Module):
    """Encoder -> attention-mask-weighted mean of token states -> dropout -> Linear logits."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.head(self.dropout(pooled))


def freeze_lower(encoder: nn.Module, frozen_layers: int) -> list[str]:
    """Freeze the embeddings and the first ``frozen_layers`` layers; return the trainable names."""
    prefixes = ("embeddings.",) + tuple(f"encoder.layer.{i}." for i in range(frozen_layers))
    trainable = []
    for name, param in encoder.named_parameters():
        param.requires_grad_(not name.startswith(prefixes))
        if param.requires_grad:
            trainable.append(name)
    return trainable


def quantise_rows(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output row: ``delta ~= q * scale[:, None]``."""
    scale = delta.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    q = torch.round(delta / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scale.float().contiguous()


def export_delta(model: MeanPoolClassifier,
                 base_state: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The tensors the base package lacks.

    LoRA factors (scale folded into B) and LayerNorms for a LoRA model; for a fully tuned
    model (``base_state`` given: the untouched base tensors of the trainable parameters),
    int8 row-quantised weight deltas and fp32 biases/LayerNorms. The head always.
    """
    delta: dict[str, torch.Tensor] = {}
    for name, module in model.encoder.named_modules():
        if isinstance(module, LoRALinear):
            delta[f"lora.{name}.a"] = module.lora_a.detach().float().contiguous()
            delta[f"lora.{name}.b"] = (module.lora_b.detach().float() * module.scale).contiguous()
    for name, param in model.encoder.named_parameters():
        tensor = param.detach().float().cpu()
        if base_state is not None and name in base_state and tensor.dim() == 2:
            q, scale = quantise_rows(tensor - base_state[name].float())
            delta[f"delta.{name}.q"] = q
            delta[f"delta.{name}.scale"] = scale
        elif (base_state is not None and name in base_state) or ("LayerNorm" in name and param.requires_grad):
            delta[f"encoder.{name}"] = tensor.contiguous()
    delta["head.weight"] = model.head.weight.detach().float().contiguous()
    delta["head.bias"] = model.head.bias.detach().float().contiguous()
    return delta


@torch.no_grad()
def apply_delta(model: MeanPoolClassifier, delta: dict[str, torch.Tensor]) -> None:
    """Merge an exported delta into a plain (LoRA-free) ``MeanPoolClassifier`` in place.

    ``W <- W + B @ A`` for each adapted Linear, ``W <- W + q * scale`` for each int8 delta;
    bias, LayerNorm and head tensors are copied.
    Raises KeyError on a name that does not exist, so a delta built for another base fails
    loudly instead of silently loading half the weights.
    """
    modules = dict(model.encoder.named_modules())
    params = dict(model.encoder.named_parameters())
    for key, tensor in delta.items():
        if key.startswith("lora.") and key.endswith(".a"):
            name = key[len("lora."):-len(".a")]
            linear = modules[name]
            b = delta[f"lora.{name}.b"]
            linear.weight += (b @ tensor).to(linear.weight.dtype)
        elif key.startswith("delta.") and key.endswith(".q"):
            name = key[len("delta."):-len(".q")]
            scale = delta[f"delta.{name}.scale"]
            params[name] += (tensor.float() * scale[:, None]).to(params[name].dtype)
        elif key.startswith("encoder."):
            params[key[len("encoder."):]].copy_(tensor)
        elif key.startswith("head."):
            getattr(model.head, key[len("head."):]).copy_(tensor)
        elif not key.startswith(("lora.", "delta.")):
            raise KeyError(f"unknown tensor in delta: {key}")
