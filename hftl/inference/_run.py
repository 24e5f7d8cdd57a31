"""The Trainer a saved model predicts and evaluates with: hftl's own (dataset order kept, a long
document's windows pooled), batches of the task's collator, nothing saved."""

from __future__ import annotations

import torch
from transformers import TrainingArguments

from ..trainer import HftlTrainer

__all__ = ["make_trainer", "DEFAULT_EVAL_BATCH"]

DEFAULT_EVAL_BATCH = 8  # TrainingArguments' per_device_eval_batch_size, what a run tests with unless told


def make_trainer(saved, batch_size: int, scratch_dir: str, **kwargs) -> HftlTrainer:
    """An :class:`HftlTrainer` over ``saved``'s model for ``predict``: ``scratch_dir`` is the folder
    Trainer insists on (it saves nothing there); ``kwargs`` go to the Trainer (metrics, loss)."""
    args = TrainingArguments(
        output_dir=scratch_dir,
        per_device_eval_batch_size=batch_size,
        report_to="none",
        remove_unused_columns=False,  # the inputs are exactly the model's (images: transformed on the fly)
        save_strategy="no",
        dataloader_pin_memory=torch.cuda.is_available(),  # pinning without a GPU only warns
    )
    return HftlTrainer(
        model=saved.model,
        args=args,
        data_collator=saved.collator(),
        processing_class=saved.processor,
        **kwargs,
    )
