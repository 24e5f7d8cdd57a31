"""The auto training budget: how many epochs a run gets when ``--num_train_epochs`` is left on auto, from the
size of its training set, so that 8 examples per class and 100,000 per class both get a run that learns.

Three epochs (the usual fine-tuning budget) are 9 optimizer steps for 40 rows at batch 16: too few for the
new head to move, so a small training set gets as many epochs as make ``MIN_STEPS`` optimizer steps (at
most ``MAX_EPOCHS``); a large one gets fewer epochs once three would show the model more than
``MAX_EXAMPLES_SEEN`` examples (at least one). Measured on BBC News and tweets with MiniLM in
docs/benchmarks/few-shot.md (``python benchmarks/few_shot.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MAX_EPOCHS", "MAX_EXAMPLES_SEEN", "MIN_STEPS", "TrainingBudget", "training_budget", "too_short"]

DEFAULT_EPOCHS = 3
MIN_STEPS = 60  # optimizer steps below which a small training set is given more epochs
MAX_EPOCHS = 25  # a few rows per class would otherwise need hundreds of passes over the same rows
MAX_EXAMPLES_SEEN = 300_000  # past this, more passes over a large training set add little
TOO_SHORT_STEPS = 20  # a run with fewer optimizer steps than this is warned about


@dataclass(frozen=True)
class TrainingBudget:
    """The epochs chosen for a training set, and why (one line for the log)."""

    epochs: float
    steps: int
    reason: str


def training_budget(rows: int, batch_size: int) -> TrainingBudget:
    """The auto number of epochs for ``rows`` training examples at an effective batch of ``batch_size``.

    Args:
        rows: Training examples (with labels) the run trains on.
        batch_size: Examples per optimizer step (per device x devices x gradient accumulation).

    Example:
        >>> training_budget(40, 16).epochs
        20.0
        >>> training_budget(20_000, 16).epochs
        3.0
    """
    per_epoch = max(1, math.ceil(rows / batch_size))
    if DEFAULT_EPOCHS * per_epoch < MIN_STEPS:
        epochs = min(MAX_EPOCHS, math.ceil(MIN_STEPS / per_epoch))
        steps = epochs * per_epoch
        capped = f", capped at {MAX_EPOCHS} epochs" if epochs == MAX_EPOCHS else ""
        reason = (
            f"{rows} training rows at batch {batch_size} are {per_epoch} optimizer step(s) an epoch: {epochs} "
            f"epochs make {steps} steps (at least {MIN_STEPS}{capped})"
        )
    else:
        # a large set: fewer passes once three would show the model more than MAX_EXAMPLES_SEEN examples
        epochs = max(1, min(DEFAULT_EPOCHS, math.ceil(MAX_EXAMPLES_SEEN / rows)))
        steps = epochs * per_epoch
        reason = f"{rows} training rows at batch {batch_size}: {epochs} epoch(s), {steps} optimizer steps"
        if epochs < DEFAULT_EPOCHS:
            reason += f" (a set this large needs fewer passes: at least {MAX_EXAMPLES_SEEN:,} examples seen)"
    return TrainingBudget(float(epochs), steps, reason)


def too_short(steps: int) -> str | None:
    """A one-line warning for a run of ``steps`` optimizer steps that is too short to learn, else None."""
    if steps >= TOO_SHORT_STEPS:
        return None
    return (
        f"warning: this run makes only {steps} optimizer step(s); a new head rarely learns in fewer than "
        f"{TOO_SHORT_STEPS}. Leave --num_train_epochs and --max_steps on auto, or raise them."
    )
