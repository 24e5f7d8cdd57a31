"""Class imbalance and label smoothing in the loss: ``--class_weights`` and ``--label_smoothing_factor``,
for classification tasks (``ClassificationTask.plan_loss`` calls :func:`plan_class_loss`).

The per-class training counts are read once from the encoded ``labels`` column (Arrow, no pass over
the rows) and printed for every run. With weights or smoothing on, :class:`ClassLoss` replaces the
model's own loss in ``HftlTrainer.compute_loss`` (and the true-label term of distillation):

- single-label: ``cross_entropy(weight=w, label_smoothing=ε)``, torch's weighted mean (divided by the
  summed weights of the batch's targets);
- multi-label: ``binary_cross_entropy_with_logits(pos_weight=w)``: the weight scales each class's
  positive term against its negatives (torch's own knob for per-class imbalance); smoothing moves the
  0/1 targets to ε/2 and 1 - ε/2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute
import torch
import torch.nn.functional as F
from datasets import Dataset

from .._log import log
from ..data.labels import LabelSpace
from ..errors import ConfigError
from ..options.techniques import parse_weight_list

__all__ = [
    "ClassLoss",
    "EFFECTIVE_NUMBER_BETA",
    "classification_loss",
    "class_weights",
    "label_counts",
    "plan_class_loss",
]

EFFECTIVE_NUMBER_BETA = 0.999  # Cui et al. 2019's usual value
_SHOWN = 20  # classes named in a log line


def label_counts(train: Dataset, labels: LabelSpace) -> np.ndarray:
    """Training examples per class id (multi-label: rows where the class is present), from the encoded
    ``labels`` column read as Arrow."""
    column = train.with_format("arrow", columns=["labels"])[:]["labels"]
    if labels.multi_label:
        hot = pyarrow.compute.list_flatten(column).to_numpy(zero_copy_only=False)
        return (hot.reshape(-1, len(labels)) > 0.5).sum(axis=0).astype(np.int64)
    ids = column.to_numpy()
    ids = ids[ids >= 0]  # -100: rows without a label
    return np.bincount(ids, minlength=len(labels)).astype(np.int64)


def _effective_number(counts: np.ndarray, beta: float = EFFECTIVE_NUMBER_BETA) -> np.ndarray:
    """``(1 - beta^n) / (1 - beta)``: the expected number of distinct samples among ``n`` (Cui et al. 2019)."""
    return (1.0 - np.power(beta, counts)) / (1.0 - beta)


def class_weights(mode: str, counts: np.ndarray, rows: int, multi_label: bool) -> np.ndarray:
    """Weights for ``auto`` or ``effective`` from per-class ``counts`` out of ``rows`` training rows.

    Single-label (one weight per class, mean 1 over classes): ``auto`` is inverse frequency,
    ``effective`` the inverse effective number of samples. Multi-label (``pos_weight``, one per class):
    ``auto`` is negatives / positives, ``effective`` the ratio of their effective numbers. A class
    without examples (or, multi-label, without negatives) counts as having one, so no weight is infinite.
    """
    positives = np.maximum(counts, 1).astype(np.float64)
    if multi_label:
        negatives = np.maximum(rows - counts, 1).astype(np.float64)
        if mode == "auto":
            return negatives / positives
        return _effective_number(negatives) / _effective_number(positives)
    raw = 1.0 / positives if mode == "auto" else 1.0 / _effective_number(positives)
    return raw / raw.mean()


def classification_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    multi_label: bool,
    weight: torch.Tensor | None = None,
    smoothing: float = 0.0,
) -> torch.Tensor:
    """The classification loss with optional class weights and label smoothing, averaged over the batch.

    Args:
        logits: ``(batch, classes)``.
        labels: Class ids (``-100``: no label, skipped), or multi-hot floats for multi-label.
        multi_label: Sigmoid per class (BCE) instead of softmax (cross-entropy).
        weight: Single-label: the weight of each class; multi-label: each class's ``pos_weight``.
        smoothing: Label smoothing ε: single-label as torch/Trainer do (ε spread over all classes),
            multi-label targets become ε/2 and 1 - ε/2.
    """
    logits = logits.float()  # fp32 loss under mixed precision, as the models compute theirs
    if weight is not None:
        weight = weight.to(device=logits.device, dtype=logits.dtype)
    if multi_label:
        targets = labels.to(logits.dtype)
        if smoothing:
            targets = targets * (1.0 - smoothing) + smoothing / 2.0
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight)
    labelled = labels != -100
    if not labelled.any():  # e.g. distillation rows whose labels --label_fraction hid: zero, not NaN
        return logits.sum() * 0.0
    return F.cross_entropy(logits[labelled], labels[labelled], weight=weight, label_smoothing=smoothing)


@dataclass(frozen=True, eq=False)  # eq would compare tensors
class ClassLoss:
    """:func:`classification_loss` with the run's settings; ``HftlTrainer.class_loss`` calls it.

    Args:
        multi_label: Sigmoid/BCE instead of softmax/cross-entropy.
        weight: Per-class weights (multi-label: ``pos_weight``), or ``None``.
        smoothing: Label smoothing ε.

    Example:
        >>> loss = ClassLoss(multi_label=False, weight=torch.tensor([1.0, 3.0]))
        >>> loss(torch.zeros(2, 2), torch.tensor([0, 1]))
        tensor(0.6931)
    """

    multi_label: bool
    weight: torch.Tensor | None = None
    smoothing: float = 0.0

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return classification_loss(
            logits, labels, multi_label=self.multi_label, weight=self.weight, smoothing=self.smoothing
        )


def _listing(names: list[str], values, fmt: str) -> str:
    shown = ", ".join(
        f"{name} {format(value, fmt)}" for name, value in zip(names[:_SHOWN], values[:_SHOWN], strict=True)
    )
    return shown + (f", ... ({len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")


def plan_class_loss(training_args, train: Dataset, labels: LabelSpace) -> ClassLoss | None:
    """Pre-flight: print the per-class training counts; resolve ``--class_weights`` (a list of the wrong
    length is refused here, before any model is built) and label smoothing into a :class:`ClassLoss`.

    Returns ``None`` when neither is on: the model's own loss is used, as in stock Trainer.
    """
    counts = label_counts(train, labels)
    rows = len(train)
    ratio = counts.max() / max(counts.min(), 1)
    if labels.multi_label:
        log(f"train positives per class (of {rows} rows): {_listing(labels.names, counts, 'd')}")
    else:
        log(f"train examples per class: {_listing(labels.names, counts, 'd')} (largest/smallest {ratio:.3g})")
    spec = str(training_args.class_weights).strip()
    given = parse_weight_list(spec)
    weight = None
    if given is not None:
        if len(given) != len(labels):
            order = ", ".join(labels.names[:_SHOWN]) + (" ..." if len(labels) > _SHOWN else "")
            raise ConfigError(
                f"--class_weights has {len(given)} weight(s) but there are {len(labels)} labels; give one per "
                f"label in this order: {order}."
            )
        weight, how = np.asarray(given, dtype=np.float64), "as given"
    elif spec.lower() != "none":
        mode = spec.lower()
        weight = class_weights(mode, counts, rows, labels.multi_label)
        if labels.multi_label:
            how = (
                "negatives/positives"
                if mode == "auto"
                else f"effective-number ratio, beta {EFFECTIVE_NUMBER_BETA}"
            )
        else:
            how = "inverse frequency" if mode == "auto" else f"effective number, beta {EFFECTIVE_NUMBER_BETA}"
            how += ", mean 1"
    smoothing = float(training_args.label_smoothing_factor or 0.0)
    if weight is None and not smoothing:
        return None
    if weight is not None:
        kind = "BCE pos_weight" if labels.multi_label else "class weights"
        log(f"{kind} ({how}): {_listing(labels.names, weight, '.3g')}")
    if smoothing and labels.multi_label:
        log(f"label smoothing {smoothing:g}: multi-label targets {smoothing / 2:g} and {1 - smoothing / 2:g}")
    return ClassLoss(
        multi_label=labels.multi_label,
        weight=None if weight is None else torch.tensor(weight, dtype=torch.float32),
        smoothing=smoothing,
    )
