"""Early stopping with the best checkpoint restored: ``--early_stopping_patience`` and
``--early_stopping_threshold``.

Only stock pieces run: transformers' ``EarlyStoppingCallback`` and ``load_best_model_at_end``. They need
matching options (checkpoints at every evaluation, a metric the evaluation reports), which hftl sets
together, or refuses in one line, before anything is loaded. hftl's crash-safe checkpoint rotation keeps
the best checkpoint whatever ``--save_total_limit`` says (``HftlTrainer._save_checkpoint`` protects it).
"""

from __future__ import annotations

from transformers import EarlyStoppingCallback

from .._log import log
from ..errors import ConfigError

__all__ = ["check_best_metric", "add_early_stopping"]


def check_best_metric(training_args, known: list[str], kind: str) -> None:
    """Pre-flight: ``--metric_for_best_model`` must be one of the ``known`` names the task's evaluation
    reports (``kind``: what the task predicts, for the message); Trainer only finds out after the first
    epoch of training."""
    if not training_args.load_best_model_at_end or not training_args.metric_for_best_model:
        return
    name = training_args.metric_for_best_model.removeprefix("eval_")
    if name not in known:
        raise ConfigError(
            f"--metric_for_best_model {training_args.metric_for_best_model} is not reported by {kind} "
            f"evaluation; use one of {', '.join(known)}."
        )


def add_early_stopping(trainer) -> None:
    """Add ``EarlyStoppingCallback`` for ``--early_stopping_patience`` and say what it watches."""
    args = trainer.args
    patience = getattr(args, "early_stopping_patience", None)
    if patience is None:
        return
    if any(isinstance(callback, EarlyStoppingCallback) for callback in trainer.callback_handler.callbacks):
        log(
            "early stopping: an EarlyStoppingCallback was passed in callbacks; --early_stopping_patience adds no second one"
        )
        return
    trainer.add_callback(EarlyStoppingCallback(patience, args.early_stopping_threshold))
    metric = "eval_" + args.metric_for_best_model.removeprefix("eval_")
    direction = "higher" if args.greater_is_better else "lower"
    threshold = f" by more than {args.early_stopping_threshold:g}" if args.early_stopping_threshold else ""
    note = getattr(args, "early_stopping_note", None)
    log(
        f"early stopping: stops after {patience} evaluation(s) without {metric} improving{threshold} ({direction} is "
        f"better); the best checkpoint is restored at the end{f' ({note}, to match eval_strategy)' if note else ''}"
    )
