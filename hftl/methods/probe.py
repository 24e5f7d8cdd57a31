"""Linear probe: the pretrained backbone is frozen and only the new head trains."""

from __future__ import annotations

from torch import nn

from .._modules import within
from ..errors import ConfigError
from ..techniques.batchnorm import FROZEN_STATISTICS
from ._base import Method
from ._registry import register_method

__all__ = ["LinearProbe"]


class LinearProbe(Method):
    """Freeze the backbone; train only the head modules (those the checkpoint did not provide).

    Frozen parameters get ``requires_grad=False``, so the optimizer never sees them and no gradient
    memory is spent on them. BatchNorm layers in the backbone also keep their pretrained running
    statistics: they normalise in eval mode even while training, so the frozen backbone computes the
    same features at training and test time and saves unchanged.
    """

    name = "linear-probe"
    default_learning_rate = 5e-3
    summary = "backbone frozen, only the classification head trains"
    help = "only the new head trains"
    tuned_learning_rates = {"bbc-news": 3e-2}
    folds_pooling = True
    shards = True  # saved by Trainer.save_model, which gathers FSDP / DeepSpeed shards

    def prepare(self, model, head, method_args, base_model_id, *, task=None):
        if not head:
            raise ConfigError(
                "linear-probe found no head module to train in this model; use --method full or lora."
            )
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        for module_name in head:
            for parameter in model.get_submodule(module_name).parameters():
                parameter.requires_grad_(True)
        for name, module in model.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not within(name, head):
                module.register_forward_pre_hook(_eval_mode)
                setattr(module, FROZEN_STATISTICS, True)  # --recalibrate_batchnorm leaves it alone
        return model


def _eval_mode(module: nn.Module, args) -> None:
    """Forward pre-hook: run in eval mode whatever ``model.train()`` said (a frozen BatchNorm)."""
    module.training = False


register_method(LinearProbe)
