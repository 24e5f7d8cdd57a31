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
from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from .._log import log
from ..errors import ConfigError

__all__ = ["align_for_early_stopping", "check_best_metric", "add_early_stopping", "evaluation_metrics"]

_STOCK_SAVE_STEPS = 500  # TrainingArguments' default: a save_strategy of steps with it was not chosen


def align_for_early_stopping(args) -> None:
    """Set ``load_best_model_at_end`` and a checkpoint at every evaluation for ``--early_stopping_patience``.

    Runs inside ``HftlTrainingArguments.__post_init__`` before the stock validation, which then sets
    ``metric_for_best_model`` (``loss`` unless given) and infers ``greater_is_better`` from its name.
    ``save_strategy`` left at its default follows ``eval_strategy``; one chosen to differ is refused.
    """
    if args.early_stopping_threshold < 0:
        raise ConfigError(
            f"--early_stopping_threshold must be zero or positive (got {args.early_stopping_threshold})."
        )
    if args.early_stopping_patience is None:
        if args.early_stopping_threshold:
            raise ConfigError(
                "--early_stopping_threshold only acts with --early_stopping_patience N; add it or drop the threshold."
            )
        return
    evaluation = IntervalStrategy(args.eval_strategy).value
    saving = SaveStrategy(args.save_strategy).value
    if evaluation == "no":
        raise ConfigError(
            "--early_stopping_patience compares evaluations, so it needs --eval_strategy epoch or steps (got no)."
        )
    every = args.eval_steps or args.logging_steps  # what stock validation makes of eval_steps
    note = None
    if (
        saving == "steps"
        and args.save_steps == _STOCK_SAVE_STEPS
        and (evaluation != "steps" or every != args.save_steps)
    ):
        args.save_strategy = evaluation
        if evaluation == "steps":
            args.save_steps = every
        note = f"save_strategy {evaluation}" + (f" every {every} steps" if evaluation == "steps" else "")
    elif saving == "best":
        pass  # saves exactly when the metric improves: what early stopping restores
    elif saving != evaluation or (evaluation == "steps" and args.save_steps % every):
        chosen = f"{saving}" + (f" every {args.save_steps} steps" if saving == "steps" else "")
        wanted = f"{evaluation}" + (f" every {every} steps" if evaluation == "steps" else "")
        raise ConfigError(
            f"--early_stopping_patience restores the best checkpoint, so one must be saved at each evaluation "
            f"({wanted}), but --save_strategy is {chosen}; drop --save_strategy/--save_steps (hftl matches them) "
            f"or use --save_strategy best."
        )
    args.load_best_model_at_end = True
    args.early_stopping_note = note  # said once at run time, not at every parse


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
