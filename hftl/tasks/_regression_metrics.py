"""Regression's numbers: target checks and standardisation, the standardised loss, the metrics (MSE, MAE,
RMSE, R², Pearson, Spearman), the per-output report, and folding the standardisation into the head."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from datasets import ClassLabel, Dataset
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from torch import nn

from ..data.labels import LabelSpace
from ..errors import DataError

__all__ = [
    "METRIC_NAMES",
    "Targets",
    "target_values",
    "StandardisedLoss",
    "RegressionMetrics",
    "regression_scores",
    "regression_report",
    "output_logits",
    "output_layers",
    "fold_into",
    "unfold_from",
]

METRIC_NAMES = ("mse", "mae", "rmse", "r2", "pearson", "spearman")


@dataclass(frozen=True)
class Targets(LabelSpace):
    """The numbers a regression model predicts: one name per output (its label column), and each
    output's mean and standard deviation on the training split (the standardisation the loss uses)."""

    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


def _as_number(value, column: str, split_name: str, row: int) -> float:
    if value is None:
        raise DataError(
            f"Row {row} of the {split_name} split has no target in column '{column}' (empty); drop or fill such rows."
        )
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(
            f"Target column '{column}' must hold numbers for regression; row {row} of the {split_name} split "
            f"holds {str(value)[:40]!r}. Fix the value, or pick the numeric column with --label_column."
        ) from None
    if not math.isfinite(number):
        raise DataError(
            f"Row {row} of the {split_name} split has the target {number} in column '{column}'; regression needs "
            "finite numbers: drop or fix such rows."
        )
    return number


def target_values(split: Dataset, columns: list[str], split_name: str) -> np.ndarray:
    """The targets of ``split`` as a float array (rows x outputs); a DataError naming the first value that
    isn't a finite number (text, empty, NaN, inf) or a column of class labels."""
    out = np.empty((len(split), len(columns)), dtype=np.float64)
    for index, column in enumerate(columns):
        feature = split.features[column]
        if isinstance(feature, ClassLabel):
            raise DataError(
                f"Column '{column}' holds classes ({', '.join(feature.names[:4])}), not numbers; use "
                "--task text-classification or image-classification, or a numeric target column."
            )
        values = split[column]
        out[:, index] = [_as_number(value, column, split_name, row) for row, value in enumerate(values)]
    return out


class StandardisedLoss:
    """MSE on standardised targets, ``((prediction - mean) / std - (target - mean) / std)²`` averaged: every
    output weighs the same whatever its units. ``folded``: the model's outputs are already in original units
    (the standardisation was folded into its head after training), so they are standardised here first."""

    def __init__(self, targets: Targets, folded: bool = False):
        self.mean, self.std, self.folded = targets.mean, targets.std, folded

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.reshape(logits.shape)
        hidden = (labels == -100).all(dim=-1)  # distillation's rows hidden by --label_fraction
        if hidden.any():
            if hidden.all():
                return logits.sum() * 0.0
            logits, labels = logits[~hidden], labels[~hidden]
        predicted = self.standardise(logits) if self.folded else logits
        return nn.functional.mse_loss(predicted, self.standardise(labels.to(logits.dtype)))

    def standardise(self, values: torch.Tensor) -> torch.Tensor:
        """``(value - mean) / std`` per output, for ``values`` (rows x outputs) in the targets' original units."""
        mean = torch.tensor(self.mean, dtype=values.dtype, device=values.device)
        std = torch.tensor(self.std, dtype=values.dtype, device=values.device)
        return (values - mean) / std


def _correlation(function, predicted: np.ndarray, true: np.ndarray) -> float:
    if np.ptp(predicted) == 0 or np.ptp(true) == 0:
        return float("nan")  # undefined for a constant; scipy would warn and return nan too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(function(predicted, true)[0])


def _one_output(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    mse = float(mean_squared_error(true, predicted))
    return {
        "mse": mse,
        "mae": float(mean_absolute_error(true, predicted)),
        "rmse": math.sqrt(mse),
        "r2": float(r2_score(true, predicted)) if len(true) > 1 else float("nan"),
        "pearson": _correlation(pearsonr, predicted, true),
        "spearman": _correlation(spearmanr, predicted, true),
    }


def regression_scores(predictions, references, names: list[str]) -> tuple[dict, dict[str, dict]]:
    """(the metrics averaged over the outputs, each output's own), in original units."""
    predicted = np.asarray(predictions, dtype=np.float64).reshape(len(references), len(names))
    true = np.asarray(references, dtype=np.float64).reshape(len(references), len(names))
    per_output = {name: _one_output(predicted[:, i], true[:, i]) for i, name in enumerate(names)}
    average = {key: float(np.mean([scores[key] for scores in per_output.values()])) for key in METRIC_NAMES}
    return average, per_output


class RegressionMetrics:
    """The Trainer's ``compute_metrics``: scores in original units. While training, the model predicts
    standardised values, turned back here; once folded (:func:`fold_into`), its outputs are original units."""

    def __init__(self, targets: Targets, folded: bool = False):
        self.targets, self.folded = targets, folded

    def __call__(self, eval_pred) -> dict[str, float]:
        predicted = np.asarray(eval_pred.predictions, dtype=np.float64)
        predicted = predicted.reshape(len(predicted), len(self.targets.names))
        if not self.folded:
            predicted = predicted * np.asarray(self.targets.std) + np.asarray(self.targets.mean)
        return regression_scores(predicted, eval_pred.label_ids, self.targets.names)[0]


def output_logits(logits, labels):
    """``preprocess_logits_for_metrics``: the model's outputs alone, as floats."""
    return (logits[0] if isinstance(logits, (tuple, list)) else logits).float()


def regression_report(predictions, references, names: list[str]) -> tuple[str, dict]:
    """A table of the metrics per output (and their average over several outputs), and its JSON form."""
    average, per_output = regression_scores(predictions, references, names)
    rows = [*per_output.items(), *([("average", average)] if len(names) > 1 else [])]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':<{width}}  " + "  ".join(f"{key:>9}" for key in METRIC_NAMES)]
    lines += [f"{name:<{width}}  " + "  ".join(f"{s[key]:>9.4f}" for key in METRIC_NAMES) for name, s in rows]
    lines.append(f"{len(references)} test rows; scores in the targets' original units")
    return "\n".join(lines), {"outputs": per_output, "average": average, "rows": len(references)}


def output_layers(model: nn.Module, head: list[str], outputs: int) -> list[nn.Linear]:
    """The linear layers inside the ``head`` modules that produce the ``outputs`` predictions (with peft, the
    trained copy and the original), each once."""
    found, seen = [], set()
    for name in head:
        for module in model.get_submodule(name).modules():
            if isinstance(module, nn.Linear) and module.out_features == outputs and id(module) not in seen:
                seen.add(id(module))
                found.append(module)
    return found


@torch.no_grad()
def fold_into(layers: list[nn.Linear], targets: Targets) -> None:
    """Make each layer output original units: ``W' = std·W``, ``b' = std·b + mean`` (per output)."""
    for layer in layers:
        std = torch.tensor(targets.std, dtype=torch.float64)
        mean = torch.tensor(targets.mean, dtype=torch.float64)
        weight, bias = layer.weight.double(), layer.bias.double()
        layer.weight.copy_((weight * std[:, None]).to(layer.weight.dtype))
        layer.bias.copy_((bias * std + mean).to(layer.bias.dtype))


@torch.no_grad()
def unfold_from(layers: list[nn.Linear], targets: Targets) -> None:
    """The inverse of :func:`fold_into`: layers that output original units output standardised ones."""
    for layer in layers:
        std = torch.tensor(targets.std, dtype=torch.float64)
        mean = torch.tensor(targets.mean, dtype=torch.float64)
        weight, bias = layer.weight.double(), layer.bias.double()
        layer.weight.copy_((weight / std[:, None]).to(layer.weight.dtype))
        layer.bias.copy_(((bias - mean) / std).to(layer.bias.dtype))
