"""hftl's Trainer: stock ``transformers.Trainer`` with evaluation kept in dataset order."""

from __future__ import annotations

from torch.utils.data import SequentialSampler
from transformers import Trainer
from transformers.trainer_utils import has_length

__all__ = ["HftlTrainer"]


class HftlTrainer(Trainer):
    """``Trainer`` whose evaluation and prediction keep the dataset's row order.

    With ``train_sampling_strategy="group_by_length"`` the stock Trainer also length-groups evaluation,
    so ``trainer.predict(ds).predictions[i]`` would not belong to ``ds[i]``. Training keeps the
    length-grouped sampler (less padding); evaluation is sequential (its speed does not depend on order
    much, and correctness does).
    """

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None
