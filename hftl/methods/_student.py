"""A smaller copy of a model, with fewer encoder layers (DistilBERT-style): a distillation student, or
``--method full --student_layers`` (distillation's no-teacher baseline)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import ConfigError

__all__ = [
    "find_layer_stack",
    "kept_layer_indices",
    "truncate_layers",
    "check_student_layers",
    "layer_count_attribute",
]

# what configs call their number of encoder layers (BERT/ViT, DistilBERT, T5-style, GPT-2)
_LAYER_COUNT_NAMES = ("num_hidden_layers", "n_layers", "num_layers", "n_layer")


def layer_count_attribute(config) -> str | None:
    """The config attribute holding the number of encoder layers, or ``None`` if it has none."""
    return next((name for name in _LAYER_COUNT_NAMES if isinstance(getattr(config, name, None), int)), None)


def find_layer_stack(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The encoder's repeated blocks: the longest ``ModuleList`` whose entries share one class
    (``bert.encoder.layer``, ``distilbert.transformer.layer``, ``vit.encoder.layer``, ...)."""
    best: tuple[str, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if (
            isinstance(module, nn.ModuleList)
            and len(module) > 1
            and len({type(block) for block in module}) == 1
        ):
            if best is None or len(module) > len(best[1]):
                best = (name, module)
    if best is None:
        raise ConfigError(
            f"--student_layers needs a stack of identical encoder layers, and {type(model).__name__} has none "
            "(CNNs change width from stage to stage); pass a smaller --model as the student instead."
        )
    return best


def kept_layer_indices(total: int, keep: int) -> list[int]:
    """``keep`` evenly spaced layer indices out of ``total``, always the first and the last.

    Example:
        >>> kept_layer_indices(6, 3)
        [0, 2, 5]
    """
    if keep == 1:
        return [total - 1]
    return sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)})


def check_student_layers(model: nn.Module, keep: int) -> tuple[str, nn.ModuleList]:
    """The layer stack of ``model`` (a weightless skeleton will do), if ``keep`` of its layers can be kept."""
    name, stack = find_layer_stack(model)
    if not 1 <= keep < len(stack):
        raise ConfigError(
            f"--student_layers must be between 1 and {len(stack) - 1} for this model, which has "
            f"{len(stack)} layers (got {keep})."
        )
    return name, stack


def truncate_layers(teacher: nn.Module, keep: int) -> tuple[nn.Module, list[int]]:
    """A copy of ``teacher`` with ``keep`` of its encoder layers (embeddings and head kept); returns the
    student and the teacher layer indices it kept."""
    name, stack = check_student_layers(teacher, keep)
    kept = kept_layer_indices(len(stack), keep)
    student = copy.deepcopy(teacher)
    parent_name, _, attribute_name = name.rpartition(".")
    parent = student.get_submodule(parent_name) if parent_name else student
    setattr(parent, attribute_name, nn.ModuleList(copy.deepcopy(stack[index]) for index in kept))
    attribute = layer_count_attribute(student.config)
    if attribute:
        setattr(student.config, attribute, keep)
    for position, block in enumerate(student.get_submodule(name)):
        for module in block.modules():  # attention layers that know their index (KV caches, layer types)
            if hasattr(module, "layer_idx"):
                module.layer_idx = position
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.requires_grad_(True)
    return student, kept
