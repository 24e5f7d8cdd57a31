"""Classification metrics that compute offline.

``evaluate.load("accuracy")`` fetches its module from the Hub, so it fails offline with an empty cache.
hftl uses an ``evaluate`` module when it is already in the local cache and scikit-learn otherwise; the
metric names and values are the same (evaluate's modules call scikit-learn).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, average_precision_score, classification_report, f1_score

from .._cache import hf_home
from .._log import log

__all__ = [
    "argmax_logits", "compute_classification_metrics", "per_class_report", "metric_backend",
    "sigmoid_logits", "MultiLabelMetrics", "multi_label_metrics", "tune_threshold",
    "threshold_from_validation",
]  # fmt: skip


def _evaluate_module_cached(name: str) -> bool:
    modules = Path(os.environ.get("HF_MODULES_CACHE", hf_home() / "modules"))
    return any((modules / "evaluate_modules" / "metrics" / f"evaluate-metric--{name}").glob("*/*.py"))


def metric_backend() -> str:
    """``"evaluate"`` when the accuracy and f1 modules are cached locally, else ``"scikit-learn"``."""
    return (
        "evaluate"
        if _evaluate_module_cached("accuracy") and _evaluate_module_cached("f1")
        else "scikit-learn"
    )


def argmax_logits(logits, labels):
    """``preprocess_logits_for_metrics``: keep class ids, not logits, so nothing big piles up on the host."""
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    return torch.argmax(logits, dim=-1)


def compute_classification_metrics(eval_pred) -> dict[str, float]:
    """``compute_metrics`` for Trainer: ``accuracy`` and ``macro_f1`` from predicted class ids."""
    predictions, references = np.asarray(eval_pred.predictions), np.asarray(eval_pred.label_ids)
    if predictions.ndim > 1:  # logits, if a caller skipped argmax_logits
        predictions = predictions.argmax(-1)
    if metric_backend() == "evaluate":
        import evaluate

        accuracy = evaluate.load("accuracy").compute(predictions=predictions, references=references)[
            "accuracy"
        ]
        macro_f1 = evaluate.load("f1").compute(
            predictions=predictions, references=references, average="macro"
        )["f1"]
    else:
        accuracy = accuracy_score(references, predictions)
        macro_f1 = f1_score(references, predictions, average="macro", zero_division=0)
    return {"accuracy": float(accuracy), "macro_f1": float(macro_f1)}


def sigmoid_logits(logits, labels):
    """``preprocess_logits_for_metrics`` for multi-label: per-class probabilities."""
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    return torch.sigmoid(logits.float())


def multi_label_metrics(probabilities, references, threshold: float = 0.5) -> dict[str, float]:
    """Micro/macro-F1 and subset accuracy at ``threshold``, and mean average precision (threshold-free).

    ``mAP`` averages over the classes that have at least one positive example (average precision is
    undefined for the others).
    """
    probabilities, references = np.asarray(probabilities, dtype=np.float64), np.asarray(references) > 0.5
    predicted = probabilities >= threshold
    present = references.any(axis=0)
    average_precision = (
        average_precision_score(references[:, present], probabilities[:, present], average="macro")
        if present.any()
        else 0.0
    )
    return {
        "micro_f1": float(f1_score(references, predicted, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(references, predicted, average="macro", zero_division=0)),
        "mAP": float(average_precision),
        "subset_accuracy": float(accuracy_score(references, predicted)),
    }


def tune_threshold(probabilities, references) -> float:
    """The one decision threshold (0.05 to 0.95, step 0.05) with the best micro-F1; ties go to the
    threshold nearest 0.5."""
    candidates = np.round(np.arange(0.05, 0.951, 0.05), 2)
    scores = [multi_label_metrics(probabilities, references, t)["micro_f1"] for t in candidates]
    best = max(scores)
    return float(
        min(
            (t for t, score in zip(candidates, scores, strict=True) if score >= best - 1e-12),
            key=lambda t: abs(t - 0.5),
        )
    )


class MultiLabelMetrics:
    """``compute_metrics`` for multi-label runs: metrics at ``threshold``; keeps the latest predictions
    so the threshold can be tuned on the validation split without predicting it again."""

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold
        self.last: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, eval_pred) -> dict[str, float]:
        probabilities, references = np.asarray(eval_pred.predictions), np.asarray(eval_pred.label_ids)
        self.last = (probabilities, references)
        return multi_label_metrics(probabilities, references, self.threshold)


def threshold_from_validation(trainer, model) -> dict[str, float]:
    """Multi-label: pick the decision threshold on the validation predictions, record it in the model's
    config (saved with it, as ``multi_label_threshold``) and re-score validation at that threshold."""
    scorer = trainer.compute_metrics
    if scorer.last is None:  # validation not scored yet (e.g. resumed after the last evaluation)
        trainer.evaluate()
    probabilities, references = scorer.last
    scorer.threshold = tune_threshold(probabilities, references)
    model.config.multi_label_threshold = scorer.threshold
    log(f"multi-label decision threshold {scorer.threshold:g} (best micro-F1 on the validation split)")
    tuned = multi_label_metrics(probabilities, references, scorer.threshold)
    return {"threshold": scorer.threshold, **{f"eval_{key}": value for key, value in tuned.items()}}


def per_class_report(predictions, references, names: list[str]) -> tuple[str, dict]:
    """scikit-learn's per-class precision/recall/F1, as printable text and as a dict (class ids, or
    multi-hot 0/1 matrices for multi-label)."""
    ids = list(range(len(names)))
    options = {"labels": ids, "target_names": names, "zero_division": 0, "digits": 3}
    text = classification_report(references, predictions, **options)
    table = classification_report(references, predictions, output_dict=True, **options)
    return text, table
