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
from sklearn.metrics import accuracy_score, classification_report, f1_score

__all__ = ["argmax_logits", "compute_classification_metrics", "per_class_report", "metric_backend"]


def _evaluate_module_cached(name: str) -> bool:
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    modules = Path(os.environ.get("HF_MODULES_CACHE", home / "modules"))
    return any((modules / "evaluate_modules" / "metrics" / f"evaluate-metric--{name}").glob("*/*.py"))


def metric_backend() -> str:
    """``"evaluate"`` when the accuracy and f1 modules are cached locally, else ``"scikit-learn"``."""
    return "evaluate" if _evaluate_module_cached("accuracy") and _evaluate_module_cached("f1") else "scikit-learn"


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

        accuracy = evaluate.load("accuracy").compute(predictions=predictions, references=references)["accuracy"]
        macro_f1 = evaluate.load("f1").compute(predictions=predictions, references=references, average="macro")["f1"]
    else:
        accuracy = accuracy_score(references, predictions)
        macro_f1 = f1_score(references, predictions, average="macro", zero_division=0)
    return {"accuracy": float(accuracy), "macro_f1": float(macro_f1)}


def per_class_report(predictions, references, names: list[str]) -> tuple[str, dict]:
    """scikit-learn's per-class precision/recall/F1, as printable text and as a dict."""
    ids = list(range(len(names)))
    options = {"labels": ids, "target_names": names, "zero_division": 0, "digits": 3}
    text = classification_report(references, predictions, **options)
    table = classification_report(references, predictions, output_dict=True, **options)
    return text, table
