"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from ._base import Method

__all__ = ["FullFineTuning"]


class FullFineTuning(Method):
    """Train every parameter of the pretrained model and its new head."""

    name = "full"
    default_learning_rate = 5e-5
    summary = "every parameter trains"

    def prepare(self, model, head, method_args, base_model_id):
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model
