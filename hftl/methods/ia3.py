"""IA3 through peft: learned vectors that rescale the attention keys and values and the feed-forward
inputs, plus a trainable, saved head. Far fewer parameters than LoRA (one per channel).

The worked example of ``docs/extending.md``: a second peft method is this module and one import line.
"""

from __future__ import annotations

from peft import IA3Config
from peft.utils import (
    TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
    TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
)

from ._peft import PeftMethod
from ._registry import register_method

__all__ = ["IA3"]


class IA3(PeftMethod):
    """peft IA3 vectors on peft's default modules for the architecture (else the attention projections;
    in CNNs the pointwise convolutions, with the BatchNorm layers trained and saved too); the new head
    trains fully and is saved. Saves like LoRA: the merged model at ``output_dir``, the adapter in
    ``output_dir/adapter``.
    """

    name = "ia3"
    label = "IA3"
    default_learning_rate = 1e-2  # IA3's vectors start at 1 and need larger steps than LoRA's matrices
    summary = "IA3 scaling vectors (peft); the new head trains and is saved"
    help = "learned scaling vectors and the new head"
    target_mapping = TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING

    def peft_config(self, model, method_args, targets, modules_to_save, task_type) -> IA3Config:
        # feed-forward modules get their input scaled, the others their output; they must be targets too
        mapped = TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING.get(model.config.model_type, [])
        return IA3Config(
            target_modules=targets,
            feedforward_modules=[name for name in mapped if name in targets],
            modules_to_save=modules_to_save,
            task_type=task_type,
        )


register_method(IA3)
