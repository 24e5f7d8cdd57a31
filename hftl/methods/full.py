"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from .._log import log
from ._base import Method
from ._registry import register_method
from ._student import check_student_layers, truncate_layers

__all__ = ["FullFineTuning"]


class FullFineTuning(Method):
    """Train every parameter of the pretrained model and its new head."""

    name = "full"
    default_learning_rate = 5e-5
    summary = help = "every parameter trains"
    trains_from_scratch = True
    takes_student_layers = True  # a smaller copy trained without a teacher: distillation's baseline
    unfreezes = True
    folds_pooling = True
    shards = True  # saved by Trainer.save_model, which gathers FSDP / DeepSpeed shards
    tuned_learning_rates = {"bbc-news": 2e-4, "mnist": 1e-3, "fashion-mnist": 1e-3, "wnut16": 2e-4}

    def preflight(self, skeleton, method_args, **context) -> None:
        if method_args.student_layers:
            check_student_layers(skeleton, method_args.student_layers)

    def prepare(self, model, head, method_args, base_model_id, *, task=None):
        if method_args.student_layers:
            model, kept = truncate_layers(model, method_args.student_layers)
            log(
                f"--student_layers {method_args.student_layers}: keeping layers {kept} of the pretrained model"
            )
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model

    def search_space(self, method_args, training_args) -> dict:
        space = {}
        if training_args.max_steps <= 0:  # --max_steps overrides epochs, and unfreezing counts epochs
            space["unfreeze_schedule"] = ["none", "head-first"]
        space["layer_decay"] = [None, 0.65, 0.75, 0.85, 0.95]
        return space


register_method(FullFineTuning, default=True)
