"""LoRA through peft: low-rank adapters on the attention projections, plus a trainable, saved head."""

from __future__ import annotations

from peft import LoraConfig
from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

from ._peft import PeftMethod
from ._registry import register_method

__all__ = ["LoRA"]


class LoRA(PeftMethod):
    """peft LoRA adapters on the attention projections (in CNNs: the pointwise convolutions, with the
    BatchNorm layers trained and saved too); the new head trains fully and is saved.

    ``output_dir`` gets the merged model at its root (loads with stock transformers; ``--lora_merge``)
    and the adapter, head included, in ``output_dir/adapter`` (loads with ``PeftModel.from_pretrained``).
    """

    name = "lora"
    label = "LoRA"
    default_learning_rate = 5e-4
    summary = "LoRA adapters (peft); the new head trains and is saved"
    help = "low-rank adapters and the new head"
    target_mapping = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    targets_option = "--lora_target_modules"
    tuned_learning_rates = {"bbc-news": 2e-3}

    def chosen_targets(self, method_args) -> list[str] | None:
        return method_args.lora_targets

    def merges(self, method_args) -> bool:
        return method_args.lora_merge

    def peft_config(self, model, method_args, targets, modules_to_save, task_type) -> LoraConfig:
        return LoraConfig(
            r=method_args.lora_r,
            lora_alpha=method_args.lora_alpha,
            lora_dropout=method_args.lora_dropout,
            target_modules=targets,
            modules_to_save=modules_to_save,
            task_type=task_type,
        )

    def card_hyperparameters(self, method_args) -> dict:
        return {
            "LoRA r": method_args.lora_r,
            "LoRA alpha": method_args.lora_alpha,
            "LoRA dropout": method_args.lora_dropout,
        }

    def search_space(self, method_args, training_args) -> dict:
        return {
            "lora_r": [4, 8, 16, 32],
            "lora_alpha": [8, 16, 32, 64],
            "lora_dropout": {"low": 0.0, "high": 0.3},
        }


register_method(LoRA)
