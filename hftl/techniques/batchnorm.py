"""``--recalibrate_batchnorm``: BatchNorm running statistics recomputed for the final weights.

A BatchNorm layer normalises a training batch by its own statistics but an evaluation batch by running
averages (momentum 0.1: in effect the last ten or so steps). While the weights still change fast, as when
a network trains from scratch, those averages describe older weights. In evaluation mode such a model can
predict one class for everything although it fits its training batches: EfficientNet-Lite0 from scratch,
60 steps on 64 digits per class, scored 0.10 on the test split. Recomputing the statistics with the final
weights over training batches ("precise BN") fixes that and changes no weight.
"""

from __future__ import annotations

import torch
from torch import nn

from .._batch import model_inputs
from .._log import log

__all__ = [
    "FROZEN_STATISTICS",
    "MAX_BATCHES",
    "trained_batchnorms",
    "recalibrate_batchnorm",
    "wants_recalibration",
]

MAX_BATCHES = 100  # training batches averaged: enough for stable statistics, a bounded cost on big data
FROZEN_STATISTICS = "hftl_frozen_statistics"  # set on a BatchNorm layer that always runs in eval mode


def trained_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers whose running statistics training updated: all with running statistics
    except those held in eval mode (a linear probe's frozen backbone keeps its pretrained statistics)."""
    return [
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        and module.track_running_stats
        and not getattr(module, FROZEN_STATISTICS, False)
    ]


def wants_recalibration(training_args, from_scratch: bool) -> bool:
    """On when asked; on auto (unset), with ``--from_scratch``, whose statistics lag the most."""
    asked = training_args.recalibrate_batchnorm
    return from_scratch if asked is None else asked


def recalibrate_batchnorm(trainer, max_batches: int = MAX_BATCHES) -> int:
    """Reset the trained BatchNorm layers' statistics and average them afresh (equal weight per batch)
    over up to ``max_batches`` full training batches (a shorter remainder is skipped), forward passes
    only; with several processes, the processes' averages are averaged. Returns the number of batches
    (0: no BatchNorm layer trained)."""
    model = trainer.model
    norms = trained_batchnorms(model)
    if not norms:
        return 0
    momenta = [norm.momentum for norm in norms]
    was_training = model.training
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average instead of a moving one
    model.eval()  # dropout off; only the recalibrated layers normalise by batch statistics
    for norm in norms:
        norm.train()
    batches, full_size = 0, None
    try:
        with torch.no_grad():
            for batch in trainer.get_train_dataloader():
                inputs = model_inputs(batch)
                size = len(next(iter(inputs.values())))
                full_size = full_size or size
                if size < full_size:  # a short remainder would weigh as much as a full batch
                    continue
                with trainer.autocast_smart_context_manager():
                    model(**inputs)
                batches += 1
                if batches == max_batches:
                    break
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.train(was_training)
    if trainer.args.world_size > 1:  # every process saw other batches; all must hold the same model
        for norm in norms:
            for buffer in (norm.running_mean, norm.running_var):
                buffer.copy_(trainer.accelerator.reduce(buffer, reduction="mean"))
    log(
        f"BatchNorm statistics recomputed with the final weights over {batches} training batches "
        f"({len(norms)} layers; --recalibrate_batchnorm)"
    )
    return batches
