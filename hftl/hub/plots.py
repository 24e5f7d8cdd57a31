"""The images a model card shows: the training curves of every run, and the plots a task draws (the
test confusion matrix of classification, predicted against true values of regression) (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._log import log

__all__ = [
    "CONFUSION_FILE",
    "CURVES_FILE",
    "SCATTER_FILE",
    "plot_confusion_matrix",
    "plot_predicted_vs_true",
    "plot_training_curves",
]

CONFUSION_FILE = "confusion_matrix.png"
CURVES_FILE = "training_curves.png"
SCATTER_FILE = "predicted_vs_true.png"
# Past this many classes their names can't be read and 0.55 inch each makes a figure too large to draw
# (1500 classes: 827 inches square); the figure keeps a fixed size and shows the matrix as a heat map.
NAMED_CLASSES_MAX = 60


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed (servers, CI)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(
    predictions, references, names: list[str], path: str | Path, multi_label: bool = False
) -> Path:
    """Single-label: counts of true (rows) against predicted (columns) classes on the test split.
    Multi-label: per-class precision/recall/F1 bars (a confusion matrix needs one label per row)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    plt = _pyplot()
    named = len(names) <= NAMED_CLASSES_MAX
    size = max(4.0, 0.55 * len(names) + 2.5) if named else 12.0
    if not named:
        log(
            f"{len(names)} classes: the confusion matrix is drawn without class names (over {NAMED_CLASSES_MAX} "
            "can't be read); all_results.json holds the metrics"
        )
    fig, ax = plt.subplots(figsize=(size, size * (0.8 if multi_label else 1.0)), dpi=110)
    if multi_label:
        precision, recall, f1, _ = precision_recall_fscore_support(references, predictions, zero_division=0)
        x = np.arange(len(names))
        for offset, values, label in (
            (-0.27, precision, "precision"),
            (0.0, recall, "recall"),
            (0.27, f1, "F1"),
        ):
            ax.bar(x + offset, values, width=0.27, label=label)
        if named:
            ax.set_xticks(x, names, rotation=45, ha="right")
        else:
            ax.set_xlabel("class id")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("score on the test split")
        ax.legend()
        ax.set_title("Per-class scores (test split, tuned threshold)")
    else:
        matrix = confusion_matrix(references, predictions, labels=list(range(len(names))))
        ax.imshow(matrix, cmap="Blues", interpolation="nearest")
        if named:
            ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
            ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("predicted class" if named else "predicted class id")
        ax.set_ylabel("true class" if named else "true class id")
        ax.set_title(f"Confusion matrix (test split, {int(matrix.sum())} examples)")
        threshold = matrix.max() / 2 if matrix.size else 0
        if len(names) <= 30:  # numbers stay legible up to about 30 classes
            for (row, column), count in np.ndenumerate(matrix):
                ax.text(
                    column,
                    row,
                    str(count),
                    ha="center",
                    va="center",
                    color="white" if count > threshold else "black",
                    fontsize=9,
                )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_predicted_vs_true(predictions, references, names: list[str], path: str | Path) -> Path:
    """Regression: one panel per output, each test row's predicted value against its true value, with the
    diagonal a perfect model would lie on."""
    plt = _pyplot()
    predicted = np.asarray(predictions, dtype=np.float64).reshape(len(references), len(names))
    true = np.asarray(references, dtype=np.float64).reshape(len(references), len(names))
    columns = min(len(names), 3)
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.0 * rows), dpi=110, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(names):
            ax.axis("off")
            continue
        x, y = true[:, index], predicted[:, index]
        ax.scatter(x, y, s=8, alpha=0.5, color="tab:blue", edgecolors="none")
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([low, high], [low, high], "--", color="tab:gray", linewidth=1)
        ax.set_xlabel(f"true {names[index]}")
        ax.set_ylabel(f"predicted {names[index]}")
    fig.suptitle(f"Predicted against true values\n(test split, {len(references)} examples)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_training_curves(log_history: list[dict], path: str | Path, metric: str) -> Path | None:
    """Training loss per logging step, and validation loss and ``metric`` per evaluation; ``None`` when
    nothing was logged."""
    train = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry and "step" in entry]
    evals = [entry for entry in log_history if "eval_loss" in entry and "step" in entry]
    if not train and not evals:
        return None
    plt = _pyplot()
    fig, loss_ax = plt.subplots(figsize=(7, 4), dpi=110)
    if train:
        loss_ax.plot(*zip(*train, strict=True), label="training loss", color="tab:blue")
    if evals:
        loss_ax.plot(
            [e["step"] for e in evals],
            [e["eval_loss"] for e in evals],
            "o-",
            label="validation loss",
            color="tab:orange",
        )
    loss_ax.set_xlabel("optimizer step")
    loss_ax.set_ylabel("loss")
    handles, labels = loss_ax.get_legend_handles_labels()
    scored = [e for e in evals if f"eval_{metric}" in e]
    if scored:
        metric_ax = loss_ax.twinx()
        metric_ax.plot(
            [e["step"] for e in scored],
            [e[f"eval_{metric}"] for e in scored],
            "s--",
            color="tab:green",
            label=f"validation {metric}",
        )
        metric_ax.set_ylabel(f"validation {metric}")
        if all(0 <= e[f"eval_{metric}"] <= 1 for e in scored):  # a score, not e.g. an error in other units
            metric_ax.set_ylim(0, 1.02)
        more_handles, more_labels = metric_ax.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    loss_ax.legend(handles, labels, loc="center right")
    loss_ax.set_title("Training curves")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
