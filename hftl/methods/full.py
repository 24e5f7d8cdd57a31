"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from .._log import log
from ._base import Method

__all__ = ["FullFineTuning"]


class FullFineTuning(Method):
    """Train every parameter of the pretrained model and its new head."""

    name = "full"
    default_learning_rate = 5e-5
    summary = "every parameter trains"

    def preflight(self, skeleton, method_args, **context) -> None:
        if method_args.student_layers:
            from ..distillation.student import check_student_layers

            check_student_layers(skeleton, method_args.student_layers)

    def prepare(self, model, head, method_args, base_model_id):
        if method_args.student_layers:  # a smaller copy trained without a teacher: distillation's baseline
            from ..distillation.student import truncate_layers

            model, kept = truncate_layers(model, method_args.student_layers)
            log(
                f"--student_layers {method_args.student_layers}: keeping layers {kept} of the pretrained model"
            )
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model
