"""The learning-rate range test (``--find_lr``), run by Trainer itself before the real training.

For ``--find_lr_steps`` optimizer steps the learning rate rises exponentially from 1e-7 to 1 (every
parameter group scaled alike, so layer-wise rates keep their ratios); the loss of each step is
recorded, and the test stops early once an exponential moving average of the loss exceeds 4x its best
value or the loss turns non-finite (fastai's rule; the average's span is fixed per decade of learning
rate, fastai's 0.98 at 100 steps). Afterwards the model's weights and buffers, the gradients and every
RNG are put back exactly as they were, so the real run starts as if the test never happened.

The suggestion is the rate of steepest descent of the loss smoothed by a *centred* moving average
(5% of the steps, at least 3) before its minimum: fastai's ``steep`` rule, without the lag of the
causal average it is usually read from (which moves the steepest point towards the loss minimum).
``lr_finder.json`` also records the minimum-loss rate / 10. When the smoothed loss never falls 2%
below its start, there is no suggestion and the run keeps its learning rate.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
from pathlib import Path

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import PrinterCallback, ProgressCallback, Trainer, TrainerCallback
from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from .._log import log
from ..trainer import HftlTrainer

__all__ = [
    "LRFinderResult",
    "centred_average",
    "find_learning_rate",
    "apply_lr_finder",
    "suggest_learning_rate",
    "JSON_FILE",
    "PLOT_FILE",
]

START_LR, END_LR = 1e-7, 1.0
JSON_FILE, PLOT_FILE = "lr_finder.json", "lr_finder.png"
SMOOTHING = 0.98  # fastai's moving-average factor, for 100 steps (the stop rule)
DIVERGED = 4.0  # stop when the moving average exceeds this many times its best value
MIN_DROP = 0.02  # a descent: the smoothed loss fell at least this fraction below its start


class LRFinderResult(dict):
    """``lrs``, ``losses``, ``smoothed_losses``, ``suggestion``, ``method``, ``min_loss_lr_over_10``."""


class _LossRecorder(TrainerCallback):
    """The loss of each step (logged every step) against the rate that step trained with."""

    def __init__(self, lr_at, steps: int):
        self.lr_at = lr_at
        self.beta = SMOOTHING ** (100 / steps)  # the same span in decades of learning rate
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.averages: list[float] = []
        self._average = 0.0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            control.should_training_stop = True
            return
        self._average = self.beta * self._average + (1 - self.beta) * loss
        average = self._average / (1 - self.beta ** (len(self.losses) + 1))  # bias-corrected
        self.lrs.append(self.lr_at(state.global_step - 1))
        self.losses.append(loss)
        self.averages.append(average)
        if average > DIVERGED * min(self.averages):
            control.should_training_stop = True


class _RangeTest(HftlTrainer):
    """A throwaway HftlTrainer whose loss and input columns are the real trainer's (a method's own
    loss, e.g. distillation's), with an exponential learning-rate ramp as its scheduler."""

    def __init__(self, real: Trainer, multiplier, **kwargs):
        self._real, self._multiplier = real, multiplier
        super().__init__(**kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return self._real.compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def _set_signature_columns_if_needed(self):
        self._real._set_signature_columns_if_needed()
        self._signature_columns = self._real._signature_columns

    def training_step(self, model, inputs, num_items_in_batch=None):
        # a diverging loss is what the test looks for: recorded, not raised (HftlTrainer raises)
        return Trainer.training_step(self, model, inputs, num_items_in_batch)

    def create_scheduler(self, num_training_steps, optimizer=None):
        if self.lr_scheduler is None:
            self.lr_scheduler = LambdaLR(optimizer or self.optimizer, self._multiplier)
        return self.lr_scheduler


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def _range_args(args, steps: int):
    """The real arguments for a short run that only logs: no evaluation, saving or reporting."""
    test = copy.copy(args)
    test.max_steps = steps
    test.eval_strategy, test.eval_on_start = IntervalStrategy.NO, False
    test.save_strategy, test.save_total_limit, test.load_best_model_at_end = SaveStrategy.NO, None, False
    test.logging_strategy, test.logging_steps, test.logging_first_step = IntervalStrategy.STEPS, 1, False
    test.logging_nan_inf_filter = False  # a NaN must show as a NaN, not as the average so far
    test.report_to = []
    test.unfreeze_schedule, test.find_lr = "none", False  # the rate for the whole model, once
    return test


def centred_average(losses: list[float]) -> list[float]:
    """Moving average over a centred window of 5% of the points (odd, at least 3; edges repeated)."""
    window = max(3, len(losses) // 20) | 1
    padded = np.pad(np.asarray(losses, dtype=float), window // 2, mode="edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid").tolist()


def suggest_learning_rate(lrs: list[float], smoothed: list[float]) -> tuple[float | None, float]:
    """(the rate of steepest descent of the smoothed loss before its minimum, or None without a
    descent; the minimum's rate / 10), both within the tested range."""
    best = int(np.argmin(smoothed))
    min_over_10 = max(lrs[best] / 10, lrs[0])
    if best < 2 or smoothed[best] > (1 - MIN_DROP) * smoothed[0]:
        return None, min_over_10
    slopes = np.gradient(np.asarray(smoothed[: best + 1]), np.log10(lrs[: best + 1]))
    return float(lrs[int(np.argmin(slopes))]), min_over_10


def find_learning_rate(trainer: Trainer, steps: int, output_dir: str | Path) -> LRFinderResult:
    """Run the range test on ``trainer``'s model and data; write the plot and JSON; restore the model.

    Args:
        trainer: The trainer about to train (not trained yet); its model, data, loss and optimizer
            settings (``--layer_decay`` etc.) are used as they are.
        steps: Optimizer steps of the test (``--find_lr_steps``); fewer if the loss diverges first.
        output_dir: Where ``lr_finder.png`` and ``lr_finder.json`` go.

    Example:
        >>> result = find_learning_rate(trainer, 100, "out")
        >>> trainer.args.learning_rate = result["suggestion"]
    """
    model, args = trainer.model, trainer.args
    base = args.learning_rate
    ratio = END_LR / START_LR

    def lr_at(step: int) -> float:
        return START_LR * ratio ** (min(step, steps - 1) / (steps - 1))

    weights = {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}
    rng = _rng_state()
    recorder = _LossRecorder(lr_at, steps)
    log(f"--find_lr: learning-rate range test, {steps} steps from {START_LR:g} to {END_LR:g}")
    finder = _RangeTest(
        trainer,
        lambda step: lr_at(step) / base,
        model=model,
        args=_range_args(args, steps),
        train_dataset=trainer.train_dataset,
        data_collator=trainer.data_collator,
        processing_class=trainer.processing_class,
        head_modules=getattr(trainer, "head_modules", None),
        callbacks=[recorder],
    )
    finder.remove_callback(finder.graceful_stop)  # Ctrl-C during the test stops the whole run
    for noisy in (PrinterCallback, ProgressCallback):  # they print every step's log
        finder.remove_callback(noisy)
    hftl_logger, muted = logging.getLogger("hftl"), logging.getLogger("hftl").disabled
    hftl_logger.disabled = True  # the test's own optimizer/unfreezing lines would read as the real run's
    try:
        finder.train()
    finally:
        hftl_logger.disabled = muted
        model.load_state_dict(weights)  # copies into the same tensors: bit-exact, same Parameters
        for parameter in model.parameters():
            parameter.grad = None
        _set_rng_state(rng)
        # the test's optimizer state and any DDP wrapper become garbage here; the real run's Trainer
        # collects it (accelerator.free_memory) before it wraps the model and builds its optimizer
        del finder
    if not recorder.losses:
        raise RuntimeError("--find_lr recorded no finite loss; check the data and model.")
    smoothed = centred_average(recorder.losses)
    suggestion, min_over_10 = suggest_learning_rate(recorder.lrs, smoothed)
    result = LRFinderResult(
        lrs=recorder.lrs,
        losses=recorder.losses,
        smoothed_losses=smoothed,
        suggestion=suggestion,
        method="steepest descent of the smoothed loss",
        min_loss_lr_over_10=min_over_10,
        start_lr=START_LR,
        end_lr=END_LR,
        steps=len(recorder.losses),
    )
    if trainer.is_world_process_zero():
        folder = Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / JSON_FILE).write_text(json.dumps(result, indent=2))
        _plot(result, folder / PLOT_FILE)
    return result


def apply_lr_finder(
    trainer: Trainer, output_dir: str | Path, learning_rate_given: bool, resuming: bool
) -> float | None:
    """``--find_lr`` in ``finetune()``: run the range test (resuming: reuse the first run's), then train
    with its suggestion unless ``--learning_rate`` was given. Returns the suggestion."""
    args = trainer.args
    saved = Path(output_dir) / JSON_FILE
    if resuming and saved.is_file():  # the run being continued chose its rate from this test
        suggestion = json.loads(saved.read_text())["suggestion"]
        log(f"--find_lr: resuming, so the first run's range test stands ({saved})")
    else:
        suggestion = find_learning_rate(trainer, args.find_lr_steps, output_dir)["suggestion"]
    how = f"steepest descent of the smoothed loss; plot in {Path(output_dir) / PLOT_FILE}"
    if suggestion is None:
        log(
            f"--find_lr: the smoothed loss fell at no tested rate, so there is no suggestion ({PLOT_FILE}); "
            f"training with learning rate {args.learning_rate:g}. More --find_lr_steps or a larger batch may show one."
        )
    elif learning_rate_given:
        log(
            f"--find_lr suggests learning rate {suggestion:.3g} ({how}); training with --learning_rate "
            f"{args.learning_rate:g} as given"
        )
    else:
        args.learning_rate = suggestion
        log(f"--find_lr: training with the suggested learning rate {suggestion:.3g} ({how})")
    return suggestion


def _plot(result: LRFinderResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    ax.plot(result["lrs"], result["losses"], color="0.75", linewidth=1, label="loss per step")
    ax.plot(
        result["lrs"],
        result["smoothed_losses"],
        color="C0",
        linewidth=2,
        label="smoothed loss (centred moving average)",
    )
    suggestion = result["suggestion"]
    if suggestion is not None:
        ax.plot(
            [suggestion],
            [result["smoothed_losses"][result["lrs"].index(suggestion)]],
            "o",
            color="C3",
            markersize=8,
            label=f"suggested {suggestion:.2g} ({result['method']})",
        )
    else:
        ax.text(0.02, 0.95, "no descent: no suggestion", transform=ax.transAxes, va="top", color="C3")
    ax.set_xscale("log")
    low, start = min(result["losses"]), result["smoothed_losses"][0]
    ax.set_ylim(
        low - 0.05 * abs(low), max(min(max(result["losses"]), 1.5 * start), start) * 1.02
    )  # past divergence
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(f"Learning-rate range test ({result['steps']} steps)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
