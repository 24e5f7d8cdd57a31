"""hftl's Trainer: stock ``transformers.Trainer`` with evaluation kept in dataset order."""

from __future__ import annotations

import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer
from transformers.trainer_utils import has_length

from .errors import HftlError

__all__ = ["HftlTrainer", "NonFiniteLossError"]


class NonFiniteLossError(HftlError):
    """The training loss became NaN or infinite; training stopped before anything was saved."""


class HftlTrainer(Trainer):
    """``Trainer`` whose evaluation and prediction keep the dataset's row order, and which stops at the
    first non-finite training loss (one line, nothing saved; stock Trainer trains on and saves NaNs).

    With ``train_sampling_strategy="group_by_length"`` the stock Trainer also length-groups evaluation,
    so ``trainer.predict(ds).predictions[i]`` would not belong to ``ds[i]``. Training keeps the
    length-grouped sampler (less padding); evaluation is sequential (its speed does not depend on order
    much, and correctness does).
    """

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():  # one host sync per step; a NaN must never reach a checkpoint
            precision = "bf16" if self.args.bf16 else "fp16" if self.args.fp16 else "fp32"
            raise NonFiniteLossError(
                f"The training loss became {loss.detach().float().item()} at step {self.state.global_step + 1} "
                f"({precision}, learning rate {self.args.learning_rate:g}); nothing was saved. Try a lower "
                "--learning_rate, --max_grad_norm 1.0, or fp32 instead of fp16/bf16."
            )
        return loss
