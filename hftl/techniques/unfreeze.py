"""Gradual unfreezing (``--unfreeze_schedule``, method full) as a Trainer callback.

- ``head-first``: only the new head trains for ``--unfreeze_interval`` epochs, then everything.
- ``gradual``: the head first, then one more layer group from the top every interval (the layer ids of
  :mod:`hftl.techniques.param_groups`: the top layer together with what sits above the stack, then the
  layer below, ..., the embeddings/stem last), as in ULMFiT.

Frozen parameters get ``requires_grad=False``: no gradient is computed or stored for them, and torch's
optimizers skip a parameter whose ``.grad`` is ``None`` (no update, no weight decay, no Adam state).
They are in the optimizer from the start (Trainer builds it once, before ``on_train_begin``; hftl's
``create_optimizer`` includes frozen parameters when a schedule is on), so thawing one is just
``requires_grad=True``. The frozen set is a function of ``state.global_step``, so a run resumed from a
checkpoint mid-schedule freezes exactly what the original run had frozen at that step.
"""

from __future__ import annotations

import math

from transformers import TrainerCallback

from .._log import log
from ..errors import ConfigError
from .param_groups import layer_map

__all__ = ["GradualUnfreezing"]


class GradualUnfreezing(TrainerCallback):
    """Freeze all but the head at the start of training and thaw layer groups on schedule.

    Args:
        schedule: ``head-first`` or ``gradual``.
        interval: Epochs (fractions allowed) between thawing steps.
        head_modules: Module names of the new head (``None``: guessed by name).

    Example:
        >>> trainer.add_callback(GradualUnfreezing("gradual", 1.0, ["classifier"]))
    """

    def __init__(self, schedule: str, interval: float, head_modules: list[str] | None):
        self.schedule, self.interval, self.head_modules = schedule, interval, head_modules
        self.stage_of: dict[str, int] = {}
        self.parameters: dict = {}
        self.interval_steps = 1
        self._applied: int | None = None

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        layers = layer_map(model, self.head_modules, require_stack=self.schedule == "gradual")
        if not layers.head:
            raise ConfigError(
                f"--unfreeze_schedule {self.schedule} found no head module to train first; drop the schedule."
            )
        top = layers.num_layers + 1
        self.parameters = dict(model.named_parameters())
        self.stage_of = {
            name: 0
            if name in layers.head
            else 1
            if self.schedule == "head-first"
            else max(1, top - layers.ids[name])
            for name in self.parameters
        }
        self.interval_steps = max(1, round(self.interval * _steps_per_epoch(args, state, train_dataloader)))
        last = max(self.stage_of.values())
        plan = f"head only until step {self.interval_steps}"
        if self.schedule == "gradual":
            plan += (
                f", then one more of {last} layer groups ({layers.source}) every {self.interval_steps} steps"
            )
        plan += f"; everything trains from step {last * self.interval_steps}"
        if last * self.interval_steps >= state.max_steps:
            plan += f", which is past the last step ({state.max_steps}): the lowest layers never train"
        log(f"--unfreeze_schedule {self.schedule}: {plan}")
        self._applied = None
        self._apply(state.global_step)

    def on_step_begin(self, args, state, control, **kwargs):
        self._apply(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        for parameter in self.parameters.values():  # the model leaves training as method full made it
            parameter.requires_grad_(True)
        self._applied = None

    def _apply(self, step: int) -> None:
        """Set ``requires_grad`` for the update that follows ``step`` completed ones."""
        stage = step // self.interval_steps
        if stage == self._applied:
            return
        for name, parameter in self.parameters.items():
            parameter.requires_grad_(self.stage_of[name] <= stage)
        self._applied = stage


def _steps_per_epoch(args, state, train_dataloader) -> float:
    """Optimizer updates per epoch, as Trainer counts them (per process)."""
    try:
        batches = len(train_dataloader)
    except TypeError:  # an iterable dataset: only max_steps and the epoch count are known
        return state.max_steps / max(state.num_train_epochs, 1)
    return max(math.ceil(batches / args.gradient_accumulation_steps), 1)
