"""Early stopping with the best checkpoint restored: ``--early_stopping_patience`` and
``--early_stopping_threshold``.

Only stock pieces run: transformers' ``EarlyStoppingCallback`` and ``load_best_model_at_end``. They need
matching options (checkpoints at every evaluation, a metric the evaluation reports), which hftl sets
together, or refuses in one line, before anything is loaded. hftl's crash-safe checkpoint rotation keeps
the best checkpoint whatever ``--save_total_limit`` says (``HftlTrainer._save_checkpoint`` protects it).
"""

from __future__ import annotations

import numpy as np
from transformers import EarlyStoppingCallback, EvalPrediction

from .._log import log
from ..errors import ConfigError

__all__ = ["check_best_metric", "add_early_stopping", "evaluation_metrics"]


def evaluation_metrics(multi_label: bool) -> list[str]:
    """The names an evaluation reports (without ``eval_``): ``loss`` and what hftl's compute_metrics returns."""
    from ..metrics import MultiLabelMetrics, compute_classification_metrics

    if multi_label:
        scores = MultiLabelMetrics()(EvalPrediction(np.array([[0.9, 0.1]]), np.array([[1.0, 0.0]])))
    else:
        scores = compute_classification_metrics(EvalPrediction(np.array([0, 1]), np.array([0, 1])))
    return ["loss", *scores]


def check_best_metric(training_args, multi_label: bool) -> None:
    """Pre-flight: ``--metric_for_best_model`` must be reported by evaluation (Trainer only finds out after
    the first epoch of training)."""
    if not training_args.load_best_model_at_end or not training_args.metric_for_best_model:
        return
    name = training_args.metric_for_best_model.removeprefix("eval_")
    known = evaluation_metrics(multi_label)
    if name not in known:
        kind = "multi-label" if multi_label else "single-label"
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
