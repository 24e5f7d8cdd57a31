"""Metrics compute offline, with the same names and values as evaluate's modules."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import EvalPrediction

from hftl.tasks._classification_metrics import (
    argmax_logits,
    compute_classification_metrics,
    metric_backend,
    per_class_report,
)


def test_metrics_compute_offline_with_an_empty_cache():
    assert metric_backend() == "scikit-learn"  # conftest gives an empty HF_HOME and HF_HUB_OFFLINE=1
    predictions = np.array([0, 1, 2, 2, 1, 0])
    references = np.array([0, 1, 1, 2, 1, 2])
    metrics = compute_classification_metrics(EvalPrediction(predictions=predictions, label_ids=references))
    assert metrics == {
        "accuracy": accuracy_score(references, predictions),
        "macro_f1": f1_score(references, predictions, average="macro"),
    }
    assert metrics["accuracy"] == 4 / 6


def test_logits_are_reduced_to_class_ids_on_the_device():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    assert argmax_logits(logits, None).tolist() == [1, 0]
    assert argmax_logits((logits, "hidden states"), None).tolist() == [1, 0]


def test_per_class_report_names_every_class():
    text, table = per_class_report([0, 1, 1], [0, 1, 2], ["neg", "neu", "pos"])
    assert {"neg", "neu", "pos"} <= set(table)
    assert table["pos"]["support"] == 1 and "pos" in text
