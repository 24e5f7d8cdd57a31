"""A task is one class whose hooks own its kind of prediction. A toy text-regression task, registered
here and nowhere else, trains with finetune(): its labels, metrics, report and card hooks are the ones
used, and nothing classification-specific (accuracy, the confusion matrix, class weights) turns up."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datasets import Value
from huggingface_hub import ModelCard
from transformers import AutoModelForSequenceClassification

import hftl.tasks
from hftl import ConfigError, finetune
from hftl.data.labels import LabelSpace
from hftl.errors import DataError
from hftl.options.config import ModelArguments
from hftl.tasks import Task, get_task
from hftl.tasks.text_classification import TextInputs

from .conftest import TINY_TRAINING, make_rows, write_csv


def _mse(eval_pred) -> dict[str, float]:
    predictions = np.asarray(eval_pred.predictions, dtype=np.float64).reshape(-1)
    references = np.asarray(eval_pred.label_ids, dtype=np.float64).reshape(-1)
    return {"mse": float(np.mean((predictions - references) ** 2))}


def _scores(logits, labels):
    return (logits[0] if isinstance(logits, (tuple, list)) else logits).squeeze(-1)


class TextScore(TextInputs, Task):
    """One number per text: a sequence head with one output and MSE loss."""

    name = "test-text-score"
    pipeline_tag = "text-classification"  # transformers serves a one-output sequence head under this tag
    auto_model_class = AutoModelForSequenceClassification
    demo_model = demo_dataset = ""
    label_column_names = ("score",)  # found without --label_column
    card_metric_order = ("mse", "loss")
    card_index_metrics = ("mse",)

    def build_labels(self, train, column, data_args):
        if not str(train.features[column].dtype).startswith(("float", "int")):
            raise DataError(f"Label column '{column}' must hold numbers.")
        return LabelSpace([column])

    def encode_labels(self, split, split_name, column, labels, data_args):
        return split.rename_column(column, "labels").cast_column("labels", Value("float32"))

    def label_config(self, labels):
        return {**super().label_config(labels), "problem_type": "regression"}

    def metrics(self, labels):
        return _mse, _scores

    def metric_names(self, labels=None):
        return ["loss", "mse"]

    def report(self, predictions, references, labels):
        mse = float(np.mean((np.asarray(predictions) - np.asarray(references)) ** 2))
        return f"test mean squared error {mse:.4f}", {"mse": mse, "rows": len(references)}

    def card_details(self, labels, metrics):
        return [f"- **Predicts:** one number, `{labels.names[0]}`"]


@pytest.fixture
def text_score(monkeypatch):
    task = TextScore()
    monkeypatch.setitem(hftl.tasks._TASKS._entries, task.name, task)  # registered for this test only
    return task


@pytest.fixture
def scores_csv(tmp_path):
    rows = [{"text": row["text"], "score": float(index % 3) / 2} for index, row in enumerate(make_rows(40))]
    return write_csv(tmp_path / "data" / "scores.csv", rows)


def test_a_registered_task_owns_labels_metrics_report_and_card(
    text_score, scores_csv, tiny_bert_dir, tmp_path, capfd
):
    output_dir = tmp_path / "out"
    result = finetune(
        model=tiny_bert_dir, dataset=str(scores_csv), task=text_score.name, output_dir=str(output_dir),
        **TINY_TRAINING,
    )  # fmt: skip
    assert {"eval_mse", "test_mse"} <= set(result.metrics)
    assert not any("accuracy" in key or "f1" in key for key in result.metrics)
    assert result.report.startswith("test mean squared error")
    logged = capfd.readouterr().err
    assert "report on the test split:\ntest mean squared error" in logged and "per-class" not in logged
    assert [line.split()[0] for line in result.table().splitlines()][:2] == ["test_mse", "test_loss"]
    report = json.loads((output_dir / "test_report.json").read_text())
    assert report["rows"] == result.metrics["test_samples"]
    config = json.loads((output_dir / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "score"}
    assert not (output_dir / "confusion_matrix.png").exists()  # the task draws no plots
    card = ModelCard.load(output_dir / "README.md")
    assert "- **Predicts:** one number, `score`" in card.text
    assert "| mse |" in card.text and "Labels (" not in card.text
    assert [result.metric_type for result in card.data.eval_results] == ["mse"]
    assert f'predict = pipeline("text-classification", model="{output_dir.name}")' in card.text


def test_classification_options_are_refused_for_other_tasks(text_score, scores_csv, tiny_bert_dir, tmp_path):
    with pytest.raises(ConfigError, match="apply to classification, not test-text-score"):
        finetune(
            model=tiny_bert_dir, dataset=str(scores_csv), task=text_score.name, class_weights="auto",
            output_dir=str(tmp_path / "out"), **TINY_TRAINING,
        )  # fmt: skip


def test_classification_tasks_report_their_metric_names():
    for name in ("text-classification", "image-classification"):
        task = get_task(name)
        assert task.metric_names() == ["loss", "accuracy", "macro_f1", "micro_f1", "mAP", "subset_accuracy"]
        assert task.headline_metric(LabelSpace(["a", "b"], multi_label=True)) == "micro_f1"


def test_build_model_passes_a_method_s_load_kwargs(tiny_bert_dir):
    task, labels = get_task("text-classification"), LabelSpace(["a", "b"])
    model_args = ModelArguments(model=tiny_bert_dir)
    config = task.load_config(tiny_bert_dir, labels, model_args)
    model, head = task.build_model(tiny_bert_dir, config, labels, model_args)
    assert model.dtype == torch.float32 and head == ["classifier"]
    half, _ = task.build_model(tiny_bert_dir, config, labels, model_args, load_kwargs={"dtype": torch.bfloat16})
    assert half.dtype == torch.bfloat16
