"""What peft tuners share in hftl: target modules found per architecture, the new head (and BatchNorm
layers) trained and saved with the adapter, and a save that loads in ``PeftModel`` and stock ``pipeline()``.

A tuner is a subclass that names its defaults and builds its peft config: :mod:`hftl.methods.lora`,
:mod:`hftl.methods.ia3`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import ClassVar

from peft import PeftConfig, get_peft_model
from torch import nn
from transformers.pytorch_utils import Conv1D

from .._log import log
from .._modules import within
from ..errors import ConfigError
from ._base import Method

__all__ = ["PeftMethod", "adaptable_names", "default_targets"]

# Attention projections by the names architectures give them, for model types peft has no default for.
_PROJECTION_NAMES = (
    ("query", "value"), ("q_proj", "v_proj"), ("q_lin", "v_lin"), ("query_key_value",), ("qkv",),
    ("c_attn",), ("Wqkv",), ("in_proj",),
)  # fmt: skip
_ADAPTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding, Conv1D)


def adaptable_names(model) -> dict[str, list[str]]:
    """Short module name -> full names, for the layer types peft tuners can wrap."""
    names: dict[str, list[str]] = {}
    for full_name, module in model.named_modules():
        if isinstance(module, _ADAPTABLE):
            names.setdefault(full_name.rsplit(".", 1)[-1], []).append(full_name)
    return names


def _matches(target: str, full_names: list[str]) -> bool:
    return any(name == target or name.endswith("." + target) for name in full_names)


def _pointwise_convs(model, head: list[str]) -> list[str]:
    """Full names of 1x1, ungrouped convolutions outside the head: the layers a tuner can adapt in a CNN
    (peft refuses ``r % groups != 0`` and can't merge grouped or depthwise convolutions)."""
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d)
        and module.kernel_size == (1, 1)
        and module.groups == 1
        and not within(name, head)
    ]


def _norm_layers(model) -> list[str]:
    """BatchNorm layers: their running statistics change in training, so they must be saved too."""
    return [
        name for name, module in model.named_modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)
    ]


def default_targets(model, mapping: dict[str, list[str]], head: list[str] = ()) -> list[str] | None:
    """peft's default targets for the model type (``mapping``), else attention projections found by name,
    else (CNNs) the pointwise convolutions."""
    mapped = mapping.get(getattr(model.config, "model_type", ""))
    if mapped:
        return list(mapped)
    short_names = adaptable_names(model)
    for candidate in _PROJECTION_NAMES:
        if all(name in short_names for name in candidate):
            return list(candidate)
    return _pointwise_convs(model, list(head)) or None


class PeftMethod(Method):
    """A peft tuner on the layers :meth:`targets` names; the new head (and any BatchNorm layer) trains
    fully and is saved with the adapter.

    ``output_dir`` gets the merged model at its root (loads with stock transformers) and the adapter,
    head included, in ``output_dir/adapter`` (loads with ``PeftModel.from_pretrained``). Subclasses set
    ``label`` and ``target_mapping`` and implement :meth:`peft_config`.
    """

    label: ClassVar[str]  # how messages name the tuner ("LoRA")
    target_mapping: ClassVar[dict[str, list[str]]] = {}  # peft's default target modules by model type
    targets_option: ClassVar[str | None] = None  # the flag that names target modules, if the tuner has one
    # save() writes the adapter and the merged model from the unwrapped model, which under sharding holds
    # only this process's shard; the trainable part is small, so DDP serves (docs/scaling.md)
    unsharded_reason = "its adapter and merged model are saved from one process's shard"

    def peft_config(
        self, model, method_args, targets: list[str], modules_to_save: list[str], task_type
    ) -> PeftConfig:
        """The peft config for ``model``: ``targets`` to adapt, ``modules_to_save`` trained fully and saved
        (the head, BatchNorm layers), ``task_type`` the task's peft task type (or None)."""
        raise NotImplementedError

    def chosen_targets(self, method_args) -> list[str] | None:
        """Target modules the user named (``None``: the architecture default)."""
        return None

    def merges(self, method_args) -> bool:
        """Whether ``save`` also writes the merged model at the output root."""
        return True

    def targets(self, model, method_args, head: list[str] = ()) -> list[str]:
        targets = self.chosen_targets(method_args) or default_targets(model, self.target_mapping, head)
        if not targets:
            available = ", ".join(sorted(adaptable_names(model))[:15])
            raise ConfigError(
                f"No default {self.label} targets for model type '{model.config.model_type}'; "
                + self._fix(f"pass {self.targets_option} with names from this model's layers: {available}.")
            )
        return targets

    def _fix(self, with_option: str) -> str:
        """What the user can do about the targets: name them with the tuner's flag, else pick another method."""
        return (
            with_option
            if self.targets_option
            else f"{self.label} takes no target option: pick another --method."
        )

    def preflight(self, skeleton, method_args, **context) -> None:
        adaptable = adaptable_names(skeleton)
        all_names = [name for names in adaptable.values() for name in names]
        for target in self.targets(skeleton, method_args):
            if not _matches(target, all_names):
                available = ", ".join(sorted(adaptable)[:15])
                raise ConfigError(
                    f"{self.label} target '{target}' matches no layer of this {skeleton.config.model_type} model; "
                    + self._fix(f"fix {self.targets_option} (layer names here: {available}).")
                )

    def prepare(self, model, head, method_args, base_model_id, *, task=None):
        norms = _norm_layers(model)
        if norms:
            log(
                f"{self.label}: {len(norms)} BatchNorm layers train and are saved with the adapter (running statistics)"
            )
        config = self.peft_config(
            model,
            method_args,
            self.targets(model, method_args, head),
            # The new head must train and must be saved with the adapter (peft only does this
            # automatically for some task types and head names); so must BatchNorm layers, whose
            # running statistics move during training.
            list(head) + norms,
            # e.g. SEQ_CLS, so AutoPeftModelForSequenceClassification loads the adapter
            task.peft_task_type if task is not None else None,
        )
        peft_model = get_peft_model(model, config)
        # get_peft_model records the path it loaded from, which may be a site-packages copy; cards and
        # AutoPeftModel need the Hub id.
        peft_model.peft_config["default"].base_model_name_or_path = base_model_id
        return peft_model

    def save(self, trainer, output_dir, processor, method_args) -> None:
        peft_model = trainer.accelerator.unwrap_model(trainer.model)
        adapter_dir = Path(output_dir) / "adapter"
        if trainer.is_world_process_zero():
            peft_model.save_pretrained(str(adapter_dir))
            processor.save_pretrained(str(adapter_dir))
            # the base config doesn't know the classes; a distillation teacher or a reader needs them
            id2label = peft_model.config.id2label
            names = [id2label[index] for index in sorted(id2label)]
            (adapter_dir / "label_names.json").write_text(json.dumps(names, ensure_ascii=False))
        if self.merges(method_args) and trainer.is_world_process_zero():
            # Merge a copy, so trainer.model stays the adapter model for the caller.
            merged = copy.deepcopy(peft_model).merge_and_unload()
            merged.save_pretrained(str(output_dir))
            processor.save_pretrained(str(output_dir))
