"""LoRA through peft: low-rank adapters on the attention projections, plus a trainable, saved head."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from peft import LoraConfig, get_peft_model
from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from torch import nn
from transformers.pytorch_utils import Conv1D

from .._log import log
from .._modules import within
from ..errors import ConfigError
from ._base import Method

__all__ = ["LoRA", "default_lora_targets"]

# Attention projections by the names architectures give them, for model types peft has no default for.
_PROJECTION_NAMES = (
    ("query", "value"), ("q_proj", "v_proj"), ("q_lin", "v_lin"), ("query_key_value",), ("qkv",),
    ("c_attn",), ("Wqkv",), ("in_proj",),
)  # fmt: skip
_ADAPTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding, Conv1D)


def _adaptable_names(model) -> dict[str, list[str]]:
    """Short module name -> full names, for the layer types LoRA can wrap."""
    names: dict[str, list[str]] = {}
    for full_name, module in model.named_modules():
        if isinstance(module, _ADAPTABLE):
            names.setdefault(full_name.rsplit(".", 1)[-1], []).append(full_name)
    return names


def _matches(target: str, full_names: list[str]) -> bool:
    return any(name == target or name.endswith("." + target) for name in full_names)


def _pointwise_convs(model, head: list[str]) -> list[str]:
    """Full names of 1x1, ungrouped convolutions outside the head: the layers LoRA can adapt in a CNN
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


def default_lora_targets(model, head: list[str] = ()) -> list[str] | None:
    """peft's default targets for the model type, else attention projections found by name, else (CNNs)
    the pointwise convolutions."""
    mapped = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(getattr(model.config, "model_type", ""))
    if mapped:
        return list(mapped)
    short_names = _adaptable_names(model)
    for candidate in _PROJECTION_NAMES:
        if all(name in short_names for name in candidate):
            return list(candidate)
    return _pointwise_convs(model, list(head)) or None


class LoRA(Method):
    """peft LoRA adapters on the attention projections (in CNNs: the pointwise convolutions, with the
    BatchNorm layers trained and saved too); the new head trains fully and is saved.

    ``output_dir`` gets the merged model at its root (loads with stock transformers) and the adapter,
    head included, in ``output_dir/adapter`` (loads with ``PeftModel.from_pretrained``).
    """

    name = "lora"
    default_learning_rate = 5e-4
    summary = "LoRA adapters (peft); the new head trains and is saved"

    def targets(self, model, method_args, head: list[str] = ()) -> list[str]:
        targets = method_args.lora_targets or default_lora_targets(model, head)
        if not targets:
            available = ", ".join(sorted(_adaptable_names(model))[:15])
            raise ConfigError(
                f"No default LoRA targets for model type '{model.config.model_type}'; pass "
                f"--lora_target_modules with names from this model's layers: {available}."
            )
        return targets

    def preflight(self, skeleton, method_args, **context) -> None:
        adaptable = _adaptable_names(skeleton)
        all_names = [name for names in adaptable.values() for name in names]
        for target in self.targets(skeleton, method_args):
            if not _matches(target, all_names):
                available = ", ".join(sorted(adaptable)[:15])
                raise ConfigError(
                    f"LoRA target '{target}' matches no layer of this {skeleton.config.model_type} model; "
                    f"fix --lora_target_modules (layer names here: {available})."
                )

    def prepare(self, model, head, method_args, base_model_id):
        norms = _norm_layers(model)
        if norms:
            log(
                f"LoRA: {len(norms)} BatchNorm layers train and are saved with the adapter (running statistics)"
            )
        config = LoraConfig(
            r=method_args.lora_r,
            lora_alpha=method_args.lora_alpha,
            lora_dropout=method_args.lora_dropout,
            target_modules=self.targets(model, method_args, head),
            # The new head must train and must be saved with the adapter (peft only does this
            # automatically for some task types and head names); so must BatchNorm layers, whose
            # running statistics move during training.
            modules_to_save=list(head) + norms,
            # SEQ_CLS lets AutoPeftModelForSequenceClassification load the adapter
            task_type="SEQ_CLS" if type(model).__name__.endswith("ForSequenceClassification") else None,
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
        if method_args.lora_merge and trainer.is_world_process_zero():
            # Merge a copy, so trainer.model stays the adapter model for the caller.
            merged = copy.deepcopy(peft_model).merge_and_unload()
            merged.save_pretrained(str(output_dir))
            processor.save_pretrained(str(output_dir))
