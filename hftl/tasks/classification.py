"""What text and image classification share: single- or multi-label classes, their metrics, the decision
threshold, the per-class report, the class loss, the distillation loss, and the card's labels, plot and
usage snippet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import EvalPrediction

from .._log import log
from ..data.labels import LabelSpace, build_label_space, encode_labels
from ..errors import ConfigError, DataError
from ..hub.plots import CONFUSION_FILE, plot_confusion_matrix
from ..options.config import DataArguments
from ..techniques.class_weights import ClassLoss, plan_class_loss
from ..techniques.soft_targets import soft_target_loss, true_label_loss
from ._base import Task
from ._classification_metrics import (
    MultiLabelMetrics,
    argmax_logits,
    compute_classification_metrics,
    per_class_report,
    sigmoid_logits,
    threshold_from_validation,
)

__all__ = ["ClassificationTask"]


def _per_class(train: Dataset, k: int, seed: int, names: list[str]) -> tuple[Dataset, Dataset | None]:
    """The first ``k`` rows of each class in one seeded shuffle of the split (all of a smaller class), and
    the rest. The same shuffle serves every ``k``, so the rows for a smaller ``k`` are among a larger one's."""
    labels = np.asarray(train.with_format("numpy")["labels"])
    order = np.random.default_rng(seed).permutation(len(labels))
    kept = np.concatenate([order[labels[order] == label][:k] for label in range(len(names))])
    counts = np.bincount(labels, minlength=len(names))
    short = [f"{name} {count}" for name, count in zip(names, counts, strict=True) if count < k]
    if short:
        log(f"samples_per_class {k}: all rows of the classes that have fewer: {', '.join(short)}")
    chosen = np.zeros(len(labels), dtype=bool)
    chosen[kept] = True
    rest = np.flatnonzero(~chosen)
    # dataset order kept: the training sampler shuffles
    return train.select(np.flatnonzero(chosen)), (train.select(rest) if len(rest) else None)


def _multi_label(logits: torch.Tensor, labels: torch.Tensor) -> bool:
    # multi-label targets are multi-hot rows shaped like the logits; single-label ones a class id per row
    return labels.dim() == logits.dim()


class ClassificationTask(Task):
    """A task that predicts classes: one per example (softmax, cross-entropy), or a set of them
    (multi-label: a list-valued or ``--label_delimiter`` column; sigmoid per class, BCE, a decision
    threshold tuned on validation). Text and image classification differ only in their inputs."""

    card_metric_order = ("accuracy", "micro_f1", "macro_f1", "mAP", "subset_accuracy", "loss")
    card_index_metrics = ("accuracy", "macro_f1", "micro_f1", "mAP")
    report_title = "per-class report on the test split"
    exports_to_onnx = True

    # --- labels -----------------------------------------------------------------------------------
    def build_labels(self, train: Dataset, column: str, data_args: DataArguments) -> LabelSpace:
        return build_label_space(train, column, data_args.label_delimiter)

    def encode_labels(
        self, split: Dataset, split_name: str, column: str, labels: LabelSpace, data_args: DataArguments
    ) -> Dataset:
        return encode_labels(split, split_name, column, labels, data_args.label_delimiter)

    def stratify_column(self, labels: LabelSpace) -> str | None:
        return None if labels.multi_label else "labels"

    def select_per_class(
        self, train: Dataset, k: int, seed: int, labels: LabelSpace
    ) -> tuple[Dataset, Dataset | None]:
        if labels.multi_label:
            raise DataError(
                "--samples_per_class counts rows per class, which needs one label per row; this data is "
                "multi-label, so use --label_fraction or --max_train_samples."
            )
        return _per_class(train, k, seed, labels.names)

    def describe_labels(self, labels: LabelSpace) -> str:
        kind = "multi-label, several per example" if labels.multi_label else "one per example"
        return f"labels ({len(labels)}, {kind}): {', '.join(labels.names[:20])}{' ...' if len(labels) > 20 else ''}"

    def label_kind(self, labels: LabelSpace) -> str:
        return "multi-label" if labels.multi_label else "single-label"

    def label_config(self, labels: LabelSpace) -> dict:
        problem = "multi_label_classification" if labels.multi_label else "single_label_classification"
        return {**super().label_config(labels), "problem_type": problem}

    def labels_from_config(self, config, names: list[str], run_config: dict | None) -> LabelSpace:
        return LabelSpace(
            names, multi_label=getattr(config, "problem_type", None) == "multi_label_classification"
        )

    # --- training and evaluation ------------------------------------------------------------------
    def plan_loss(self, training_args, train: Dataset, labels: LabelSpace) -> ClassLoss | None:
        return plan_class_loss(training_args, train, labels)  # prints the per-class counts

    def distill_soft_loss(self, student_logits, teacher_logits, labels, temperature) -> torch.Tensor:
        return soft_target_loss(
            student_logits, teacher_logits, temperature, _multi_label(student_logits, labels)
        )

    def distill_hard_loss(self, logits, labels) -> torch.Tensor:
        return true_label_loss(logits, labels, _multi_label(logits, labels))

    def check_teacher(self, teacher_config, data_args: DataArguments) -> None:
        if getattr(teacher_config, "problem_type", None) == "regression":
            raise ConfigError(
                f"The teacher predicts numbers (a regression model), not the classes of --task {self.name}; "
                "distill from a classifier fine-tuned on these labels."
            )

    def metrics(self, labels: LabelSpace) -> tuple:
        if labels.multi_label:  # keeps the validation scores for the threshold tuned after training
            return MultiLabelMetrics(), sigmoid_logits
        return compute_classification_metrics, argmax_logits

    def metric_names(self, labels: LabelSpace | None = None) -> list[str]:
        if labels is None:
            kinds = (LabelSpace(["a", "b"]), LabelSpace(["a", "b"], multi_label=True))
            return list(dict.fromkeys(name for kind in kinds for name in self.metric_names(kind)))
        # what compute_metrics returns for a minimal prediction, so the names can't drift from it
        if labels.multi_label:
            scores = MultiLabelMetrics()(EvalPrediction(np.array([[0.9, 0.1]]), np.array([[1.0, 0.0]])))
        else:
            scores = compute_classification_metrics(EvalPrediction(np.array([0, 1]), np.array([0, 1])))
        return ["loss", *scores]

    def headline_metric(self, labels: LabelSpace) -> str:
        return "micro_f1" if labels.multi_label else "accuracy"

    def headline_metrics(self) -> list[str]:
        return ["accuracy", "micro_f1"]  # single-label, multi-label (at the tuned threshold)

    def after_training(self, trainer, model, labels: LabelSpace) -> dict:
        return threshold_from_validation(trainer, model) if labels.multi_label else {}

    def test_predictions(self, output, metrics: dict, labels: LabelSpace):
        return output.predictions >= metrics["threshold"] if labels.multi_label else output.predictions

    def report(self, predictions, references, labels: LabelSpace) -> tuple[str, dict]:
        return per_class_report(predictions, references, labels.names)

    def result_keys(self, labels: LabelSpace) -> list[str]:
        # one list for both label kinds (each run has only its own keys); the tuned threshold follows the scores
        return [
            "test_accuracy",
            "test_micro_f1",
            "test_macro_f1",
            "test_mAP",
            "test_subset_accuracy",
            "threshold",
        ]

    def comparison_metrics(self, labels: LabelSpace) -> list[str]:
        return ["accuracy", "macro_f1", "micro_f1"]

    # --- model card -------------------------------------------------------------------------------
    def card_tags(self, labels: LabelSpace) -> list[str]:
        return ["multi-label"] if labels.multi_label else []

    def card_details(self, labels: LabelSpace, metrics: dict) -> list[str]:
        several = ", several per example" if labels.multi_label else ""
        lines = [f"- **Labels ({len(labels)}{several}):** {', '.join(labels.names)}"]
        if metrics.get("threshold") is not None:
            lines.append(
                f"- **Decision threshold:** {metrics['threshold']} (per-class sigmoid scores at or above it are "
                "predicted; tuned on validation, also in `config.json` as `multi_label_threshold`)"
            )
        return lines

    def card_usage(
        self, repo_id: str, labels: LabelSpace, base_model: str | None, adapter: str | None
    ) -> str:
        snippet = f'from transformers import pipeline\n\nclassify = pipeline("{self.pipeline_tag}", model="{repo_id}"'
        snippet += ", top_k=None)" if labels.multi_label else ")"
        snippet += f"\nprint(classify({self.usage_example}))"
        if adapter:
            auto = self.auto_model_class.__name__
            snippet += (
                f"\n\n# or the {adapter} adapter (head included) on its base model\nfrom peft import PeftModel\n"
                f"from transformers import {auto}\n\n"
                f'base = {auto}.from_pretrained("{base_model or "<base model>"}", num_labels={len(labels)})\n'
                f'model = PeftModel.from_pretrained(base, "{repo_id}", subfolder="adapter")'
            )
        return snippet

    def plots(self, output_dir: Path, predictions, references, labels: LabelSpace) -> list[tuple[str, str]]:
        path = Path(output_dir) / CONFUSION_FILE
        plot_confusion_matrix(predictions, references, labels.names, path, labels.multi_label)
        caption = "Per-class test scores" if labels.multi_label else "Confusion matrix on the test split"
        return [(CONFUSION_FILE, caption)]
