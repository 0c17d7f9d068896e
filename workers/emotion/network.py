"""The default model's network: the base encoder, mean pooling, a linear head, and LoRA.

all-MiniLM-L6-v2 was trained with mean pooling, so the classifier pools the same way
(attention-mask weighted) instead of reading the [CLS] token, which this encoder never
learnt to fill. Fine-tuning uses low-rank adapters (our own ~40-line LoRA, so inference
needs no peft) plus the LayerNorms and the head; only those tensors are shipped, and
``apply_delta`` merges them into the pip-installed base when a worker starts, which keeps
inference a plain BertModel whose Linear layers int8 dynamic quantisation can convert.
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


def export_delta(model: MeanPoolClassifier) -> dict[str, torch.Tensor]:
    """The tensors the base package lacks: LoRA factors (scale folded into B), LayerNorms, head."""
    delta: dict[str, torch.Tensor] = {}
    for name, module in model.encoder.named_modules():
        if isinstance(module, LoRALinear):
            delta[f"lora.{name}.a"] = module.lora_a.detach().float().contiguous()
            delta[f"lora.{name}.b"] = (module.lora_b.detach().float() * module.scale).contiguous()
    for name, param in model.encoder.named_parameters():
        if "LayerNorm" in name:
            delta[f"encoder.{name}"] = param.detach().float().contiguous()
    delta["head.weight"] = model.head.weight.detach().float().contiguous()
    delta["head.bias"] = model.head.bias.detach().float().contiguous()
    return delta


@torch.no_grad()
def apply_delta(model: MeanPoolClassifier, delta: dict[str, torch.Tensor]) -> None:
    """Merge an exported delta into a plain (LoRA-free) ``MeanPoolClassifier`` in place.

    ``W <- W + B @ A`` for each adapted Linear; LayerNorm and head tensors are copied.
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
        elif key.startswith("encoder."):
            params[key[len("encoder."):]].copy_(tensor)
        elif key.startswith("head."):
            getattr(model.head, key[len("head."):]).copy_(tensor)
        elif not key.startswith("lora."):
            raise KeyError(f"unknown tensor in delta: {key}")
