"""Regression: one number per example (a float label column), or several (``--label_column a,b,c``), for
text and images. Training standardises the targets (the train split's mean and std); after training the
standardisation is folded into the head's output layer, so the saved model and stock ``pipeline()``
(``function_to_apply="none"``) give values in the targets' original units."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, List, Value
from transformers import AutoConfig, AutoModelForImageClassification, AutoModelForSequenceClassification

from .._log import log
from ..data.columns import LABEL_COLUMN_NAMES
from ..errors import ConfigError, DataError
from ..hub.plots import SCATTER_FILE, plot_predicted_vs_true
from ..options.config import DataArguments
from ._base import Task
from ._regression_metrics import (
    METRIC_NAMES,
    RegressionMetrics,
    StandardisedLoss,
    Targets,
    fold_into,
    output_layers,
    output_logits,
    regression_report,
    target_values,
    unfold_from,
)
from .image_classification import ImageInputs
from .text_classification import TextInputs

__all__ = ["RegressionTask", "TextRegression", "ImageRegression", "Targets"]

# config.json entry: the standardisation, and whether the head's output layer already undoes it
CONFIG_KEY = "regression_targets"


def _columns(column: str) -> list[str]:
    return [name.strip() for name in column.split(",")] if "," in column else [column]


def _targets(split: Dataset, column: str, split_name: str) -> np.ndarray:
    """Rows x outputs: a column joined from several (already checked numbers), or one checked here."""
    if "," in column:
        return np.asarray(split[column], dtype=np.float64).reshape(len(split), -1)
    if isinstance(split.features[column], List):
        raise DataError(
            f"Target column '{column}' holds lists; give each output a column of its own and name them all, "
            "e.g. --label_column valence,arousal."
        )
    return target_values(split, [column], split_name)


class RegressionTask(Task):
    """A task that predicts numbers: a head with one output per target column, MSE on standardised targets,
    MSE/MAE/RMSE/R²/Pearson/Spearman in original units (averaged over several outputs; each in the report),
    a predicted-against-true plot. Text and image regression differ only in their inputs."""

    label_column_names = tuple(dict.fromkeys((*LABEL_COLUMN_NAMES, "score", "value", "y")))
    report_title = "regression report on the test split"
    card_metric_order = ("r2", "pearson", "spearman", "rmse", "mae", "mse", "loss")
    card_index_metrics = ("r2", "pearson", "rmse")

    @property
    def demo_dataset(self) -> str:
        # read only when --dataset is missing; a task without a built-in dataset says so (an empty name would
        # load the current folder); text regression has one (TextRegression.demo_dataset)
        raise ConfigError(
            f"--task {self.name} has no built-in demo dataset yet; pass --dataset (a CSV, JSON or parquet file "
            "with the inputs and a numeric target column, or a folder of train/validation/test files)."
        )

    # --- labels -----------------------------------------------------------------------------------
    def combine_label_columns(self, raw: dict[str, Dataset], data_args: DataArguments) -> dict[str, Dataset]:
        given = data_args.label_column
        if not given or "," not in given:
            return raw
        names = _columns(given)
        if len(set(names)) != len(names) or not all(names):
            raise DataError(
                f"--label_column {given} names a column twice or an empty one; name each output once."
            )
        combined = {}
        for split_name in sorted(raw, key=lambda name: name != "train"):  # train's problems first
            split = raw[split_name]
            missing = [name for name in names if name not in split.column_names]
            if missing:
                raise DataError(
                    f"Target column '{missing[0]}' not found in the {split_name} split; columns are: "
                    f"{', '.join(split.column_names)}. Fix --label_column."
                )
            values = target_values(split, names, split_name).tolist()
            combined[split_name] = split.remove_columns(names).add_column(given, values)
        return combined

    def build_labels(self, train: Dataset, column: str, data_args: DataArguments) -> Targets:
        names = _columns(column)
        values = _targets(train, column, "train")
        std = values.std(axis=0)
        for name, spread, first in zip(names, std, values[0], strict=True):
            if not spread > 0:
                raise DataError(
                    f"Target '{name}' is {first:g} in every training row: there is nothing to learn (and no spread "
                    "to standardise by); check --label_column."
                )
        return Targets(names, mean=tuple(values.mean(axis=0).tolist()), std=tuple(std.tolist()))

    def encode_labels(
        self, split: Dataset, split_name: str, column: str, labels: Targets, data_args: DataArguments
    ) -> Dataset:
        values = _targets(split, column, split_name).astype(np.float32)
        column_values = values[:, 0].tolist() if len(labels) == 1 else values.tolist()
        feature = Value("float32") if len(labels) == 1 else List(Value("float32"), length=len(labels))
        split = split.remove_columns(column).add_column("labels", column_values)
        return split.cast_column("labels", feature)

    def describe_labels(self, labels: Targets) -> str:
        spread = ", ".join(
            f"{name} (mean {mean:.4g}, std {std:.4g})"
            for name, mean, std in zip(labels.names, labels.mean, labels.std, strict=True)
        )
        return f"regression targets ({len(labels)}): {spread}"

    def label_kind(self, labels: Targets) -> str:
        return "regression"

    def label_config(self, labels: Targets) -> dict:
        return {**super().label_config(labels), "problem_type": "regression"}

    def labels_from_config(self, config, names: list[str], run_config: dict | None) -> Targets:
        stored = getattr(config, CONFIG_KEY, None) or {}  # no record: the head gives the targets' own units
        count = len(names)
        return Targets(
            names,
            mean=tuple(stored.get("mean") or (0.0,) * count),
            std=tuple(stored.get("std") or (1.0,) * count),
        )

    def load_config(self, path: str, labels: Targets, model_args, processor=None):
        config = super().load_config(path, labels, model_args, processor)
        # checkpoints written while training hold standardised outputs: their config says so
        setattr(
            config,
            CONFIG_KEY,
            {"mean": list(labels.mean), "std": list(labels.std), "folded_into_head": False},
        )
        return config

    # --- training and evaluation ------------------------------------------------------------------
    def plan_loss(self, training_args, train: Dataset, labels: Targets) -> StandardisedLoss:
        super().plan_loss(training_args, train, labels)  # refuses class weights and label smoothing
        return StandardisedLoss(labels)

    def metrics(self, labels: Targets) -> tuple:
        return RegressionMetrics(labels), output_logits

    def metric_names(self, labels: Targets | None = None) -> list[str]:
        return ["loss", *METRIC_NAMES]

    def headline_metric(self, labels: Targets) -> str:
        return "r2"

    def headline_metrics(self) -> list[str]:
        return ["r2"]  # greater is better, as --hp_search assumes for a headline metric

    def greater_is_better(self, metric: str) -> bool:
        return metric not in ("loss", "mse", "mae", "rmse")  # errors: lower is better

    def adjust_training_args(self, training_args) -> None:
        super().adjust_training_args(training_args)
        metric = training_args.metric_for_best_model
        # transformers took every name not ending in "loss" for a score to maximise
        if (
            metric
            and training_args.greater_is_better
            and not self.greater_is_better(metric.removeprefix("eval_"))
        ):
            training_args.greater_is_better = False
            log(f"--metric_for_best_model {metric}: lower is better (an error, not a score)")

    def build_model(self, path, config, labels: Targets, model_args, load_kwargs=None):
        model, head = super().build_model(path, config, labels, model_args, load_kwargs)
        source = None if model_args.from_scratch else AutoConfig.from_pretrained(
            path, revision=model_args.revision, trust_remote_code=model_args.trust_remote_code
        )  # fmt: skip
        stored = getattr(source, CONFIG_KEY, None) or {}
        names = [str(source.id2label[i]) for i in sorted(source.id2label)] if stored else []
        if stored.get("folded_into_head") and names == list(labels.names):
            # the head of an hftl regression output (a distillation teacher cut into its student, or a model
            # trained further) gives original units: this run trains on standardised targets
            unfold_from(output_layers(model, head, len(labels)), labels)
            log("regression: the checkpoint's head gives original units; standardised by this run's targets")
        return model, head

    def check_weights(self, path: str, skeleton, model_args) -> None:
        super().check_weights(path, skeleton, model_args)
        outputs = skeleton.config.num_labels
        layers = output_layers(skeleton, self._named_head(skeleton), outputs)
        if not layers or any(layer.bias is None for layer in layers):
            raise ConfigError(
                f"This {skeleton.config.model_type} model's head has no linear output layer with a bias and "
                f"{outputs} outputs, which regression folds its target standardisation into; use another model."
            )

    def after_training(self, trainer, model, labels: Targets) -> dict:
        # the model learnt standardised targets: from here on its outputs are original units, and the
        # loss and metrics read them so
        fold_into(output_layers(model, self._named_head(model), len(labels)), labels)
        trainer.class_loss = StandardisedLoss(labels, folded=True)
        trainer.compute_metrics = RegressionMetrics(labels, folded=True)
        config = trainer.accelerator.unwrap_model(trainer.model).config
        setattr(config, CONFIG_KEY, {**getattr(config, CONFIG_KEY), "folded_into_head": True})
        log("regression: the target standardisation is folded into the head; outputs are in original units")
        return {}

    def report(self, predictions, references, labels: Targets) -> tuple[str, dict]:
        return regression_report(predictions, references, labels.names)

    def result_keys(self, labels: Targets) -> list[str]:
        return [f"test_{name}" for name in ("r2", "pearson", "spearman", "rmse", "mae", "mse")]

    def comparison_metrics(self, labels: Targets) -> list[str]:
        return ["r2", "pearson", "rmse"]

    # --- distillation ----------------------------------------------------------------------------
    # The teacher is an hftl regression output: its head gives the targets' original units (folded). The
    # student trains on standardised targets, so the teacher's outputs are standardised by the student's
    # targets (distill_view binds them) and both terms are MSEs in those units. No temperature: a number has
    # no distribution to soften.
    _distill_targets: Targets | None = None

    def distill_view(self, labels: Targets) -> RegressionTask:
        view = copy.copy(self)
        view._distill_targets = labels
        return view

    def distill_soft_loss(self, student_logits, teacher_logits, labels, temperature) -> torch.Tensor:
        teacher = teacher_logits.detach().to(student_logits.dtype).reshape(student_logits.shape)
        if self._distill_targets is not None:
            teacher = StandardisedLoss(self._distill_targets).standardise(teacher)
        return torch.nn.functional.mse_loss(student_logits.float(), teacher.float())

    def distill_hard_loss(self, logits, labels) -> torch.Tensor:
        if self._distill_targets is None:  # no standardisation bound: the values as they are
            return StandardisedLoss(Targets(["y"], mean=(0.0,), std=(1.0,)))(logits, labels)
        return StandardisedLoss(self._distill_targets)(logits, labels)

    def check_teacher(self, teacher_config, data_args: DataArguments) -> None:
        stored = getattr(teacher_config, CONFIG_KEY, None)
        if getattr(teacher_config, "problem_type", None) != "regression" or not stored:
            raise ConfigError(
                f"--method distill with --task {self.name} needs a regression teacher (an hftl {self.name} "
                "output, whose head gives values in the targets' units); this one predicts classes or unknown units."
            )
        if not stored.get("folded_into_head"):
            raise ConfigError(
                "The teacher's outputs are standardised targets (a checkpoint written while training); distill "
                "from the run's output directory, whose head gives the targets' own units."
            )
        names = [str(teacher_config.id2label[i]) for i in sorted(teacher_config.id2label)]
        given = data_args.label_column
        if given and "," in given and _columns(given) != names:
            raise ConfigError(
                f"The teacher predicts {', '.join(names)}, but --label_column is {given}; distill with the "
                "teacher's target columns, in its order."
            )

    # --- model card -------------------------------------------------------------------------------
    def card_tags(self, labels: Targets) -> list[str]:
        return ["regression"]

    def card_details(self, labels: Targets, metrics: dict) -> list[str]:
        several = len(labels) > 1
        spread = "; ".join(
            f"`{name}` mean {mean:.4g}, std {std:.4g}"
            for name, mean, std in zip(labels.names, labels.mean, labels.std, strict=True)
        )
        return [
            f"- **Predicts:** {len(labels)} number{'s' if several else ''}: {', '.join(f'`{n}`' for n in labels.names)}",
            f"- **Target standardisation:** {spread} (training split); trained on standardised targets, then "
            f"folded into the head's output layer, so outputs are in the original units (`config.json`: `{CONFIG_KEY}`)",
        ]

    def card_usage(self, repo_id: str, labels: Targets, base_model: str | None, adapter: str | None) -> str:
        every = ", top_k=None" if len(labels) > 1 else ""
        snippet = (
            f'from transformers import pipeline\n\npredict = pipeline("{self.pipeline_tag}", model="{repo_id}", '
            f'function_to_apply="none"{every})\nprint(predict({self.usage_example}))  # values in original units'
        )
        if adapter:
            auto = self.auto_model_class.__name__
            snippet += (
                f"\n\n# or the {adapter} adapter (head included) on its base model\nfrom peft import PeftModel\n"
                f"from transformers import {auto}\n\n"
                f'base = {auto}.from_pretrained("{base_model or "<base model>"}", num_labels={len(labels)}, '
                'problem_type="regression")\n'
                f'model = PeftModel.from_pretrained(base, "{repo_id}", subfolder="adapter")'
            )
        return snippet

    def plots(self, output_dir: Path, predictions, references, labels: Targets) -> list[tuple[str, str]]:
        plot_predicted_vs_true(predictions, references, labels.names, Path(output_dir) / SCATTER_FILE)
        return [(SCATTER_FILE, "Predicted against true values on the test split")]


class TextRegression(TextInputs, RegressionTask):
    """Numbers from one text column or a pair (ratings, similarity, quality scores)."""

    name = "text-regression"
    pipeline_tag = "text-classification"  # transformers serves a sequence head's raw outputs under this tag
    card_kind = "text-regression"
    peft_task_type = "SEQ_CLS"  # peft's type for any sequence head, regression included: it saves the head
    auto_model_class = AutoModelForSequenceClassification
    pools_text = True
    demo_model = "sentence-transformers/all-MiniLM-L6-v2"
    demo_dataset = "vader-lexicon"  # its target column, ``rating``, is one of label_column_names


class ImageRegression(ImageInputs, RegressionTask):
    """Numbers from one image column (a CSV or JSON of image paths and target columns)."""

    name = "image-regression"
    pipeline_tag = "image-classification"
    card_kind = "image-regression"
    auto_model_class = AutoModelForImageClassification
    demo_model = "timm/tf_efficientnet_lite0.in1k"
