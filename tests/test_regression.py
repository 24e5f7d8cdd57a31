"""Regression tasks (text-regression, image-regression): metrics in original units, the target
standardisation folded into the saved head (stock pipeline() gives original units), several outputs, bad
targets refused before any model is built, every method that trains a head, and images."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from peft import PeftModel
from PIL import Image
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    pipeline,
)

from hftl import ConfigError, DataError, finetune
from hftl.options.training_args import HftlTrainingArguments
from hftl.search.trials import _objective
from hftl.tasks import get_task

from .conftest import TINY_TRAINING, make_rows, write_csv
from .reliability.test_resume import RESUME_TRAINING, assert_same_run, batches, stop_and_resume  # noqa: F401
from .test_image import tiny_resnet, tiny_vit  # noqa: F401 - the fixtures
from .test_methods import STANDALONE_METHODS
from .test_timm import tiny_timm  # noqa: F401 - the fixture

METRICS = ["mse", "mae", "rmse", "r2", "pearson", "spearman"]
TOPIC_SCORE = {"sport": 40.0, "politics": 55.0, "tech": 70.0}  # far from 0 and 1: units show


def _rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for row in make_rows(n, seed):
        base = TOPIC_SCORE.get(row["label"], 50.0)
        rows.append(
            {
                "text": row["text"],
                "score": round(base + float(rng.normal(0, 3)), 3),
                "arousal": round(0.2 + base / 500 + float(rng.normal(0, 0.01)), 4),
            }
        )
    return rows


@pytest.fixture
def score_folder(tmp_path):
    """train/validation/test CSVs: the test rows are known, so pipeline() outputs can be scored here."""
    folder = tmp_path / "scores"
    for name, n, seed in (("train", 48, 0), ("validation", 12, 1), ("test", 12, 2)):
        write_csv(folder / f"{name}.csv", _rows(n, seed))
    return folder


def _test_rows(folder, split: str = "test"):
    with (folder / f"{split}.csv").open() as handle:
        return list(csv.DictReader(handle))


def _train(folder, tiny_bert_dir, tmp_path, **options):
    options = {"learning_rate": 1e-3, **TINY_TRAINING, **options}
    options["max_steps"] = options.get("max_steps", 2)
    return finetune(
        model=tiny_bert_dir, dataset=str(folder), task="text-regression",
        output_dir=str(tmp_path / "out"), **options,
    )  # fmt: skip


def test_text_regression_reports_metrics_card_and_plot(score_folder, tiny_bert_dir, tmp_path, capfd):
    result = _train(score_folder, tiny_bert_dir, tmp_path, label_column="score")
    out = result.output_dir
    assert {f"{split}_{name}" for split in ("eval", "test") for name in METRICS} <= set(result.metrics)
    assert not any("accuracy" in key or "f1" in key for key in result.metrics)
    assert [line.split()[0] for line in result.table().splitlines()][:3] == ["test_r2", "test_pearson", "test_spearman"]
    assert "regression report on the test split:\n" in capfd.readouterr().err
    assert result.report.splitlines()[0].split() == METRICS and result.report.splitlines()[1].startswith("score")
    report = json.loads((out / "test_report.json").read_text())
    assert report["rows"] == 12 and set(report["outputs"]["score"]) == set(METRICS)
    assert report["outputs"]["score"]["mse"] == pytest.approx(result.metrics["test_mse"], rel=1e-5)
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "regression" and len(config["id2label"]) == 1
    assert config["id2label"] == {"0": "score"}
    train = np.array([row["score"] for row in _rows(48, 0)])
    standardisation = config["regression_targets"]
    assert standardisation["folded_into_head"] is True
    assert standardisation["mean"] == pytest.approx([train.mean()]) and standardisation["std"] == pytest.approx([train.std()])
    assert (out / "predicted_vs_true.png").is_file() and not (out / "confusion_matrix.png").exists()
    card = ModelCard.load(out / "README.md")
    assert "- **Predicts:** 1 number: `score`" in card.text and "Labels (" not in card.text
    assert "A text-regression model trained" in card.text and "A text-classification model" not in card.text
    assert f'pipeline("text-classification", model="{out.name}", function_to_apply="none")' in card.text
    assert "predicted_vs_true.png" in card.text
    assert [entry.metric_type for entry in card.data.eval_results] == ["r2", "pearson", "rmse"]


def test_saved_model_predicts_original_units_in_stock_pipeline(score_folder, tiny_bert_dir, tmp_path):
    result = _train(score_folder, tiny_bert_dir, tmp_path, label_column="score", max_steps=6)
    rows = _test_rows(score_folder)
    predict = pipeline("text-classification", model=str(result.output_dir), function_to_apply="none", device="cpu")
    outputs = predict([row["text"] for row in rows])
    assert {output["label"] for output in outputs} == {"score"}
    predicted = np.array([output["score"] for output in outputs])
    true = np.array([float(row["score"]) for row in rows])
    # original units: near the targets' mean of about 55, not a standardised value near 0
    assert abs(predicted.mean() - 55) < 15
    assert float(np.mean((predicted - true) ** 2)) == pytest.approx(result.metrics["test_mse"], rel=1e-4)
    # validation was scored before the fold, from standardised outputs turned back: the same units
    rows = _test_rows(score_folder, "validation")
    predicted = np.array([output["score"] for output in predict([row["text"] for row in rows])])
    true = np.array([float(row["score"]) for row in rows])
    assert float(np.mean((predicted - true) ** 2)) == pytest.approx(result.metrics["eval_mse"], rel=1e-4)


def test_several_outputs_each_in_their_units(score_folder, tiny_bert_dir, tmp_path):
    result = _train(score_folder, tiny_bert_dir, tmp_path, label_column="score,arousal", max_steps=4)
    assert result.labels.names == ["score", "arousal"]
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "score", "1": "arousal"}
    report = json.loads((result.output_dir / "test_report.json").read_text())
    assert list(report["outputs"]) == ["score", "arousal"]
    for name in METRICS:  # the metrics are the outputs' average
        mean = np.mean([report["outputs"][output][name] for output in ("score", "arousal")])
        assert report["average"][name] == pytest.approx(mean) == pytest.approx(result.metrics[f"test_{name}"], rel=1e-4)
    assert [line.split()[0] for line in result.report.splitlines()[1:4]] == ["score", "arousal", "average"]
    predict = pipeline(
        "text-classification", model=str(result.output_dir), function_to_apply="none", top_k=None, device="cpu"
    )
    values = {output["label"]: output["score"] for output in predict([_test_rows(score_folder)[0]["text"]])[0]}
    assert abs(values["score"] - 55) < 15 and abs(values["arousal"] - 0.31) < 0.2  # each in its own units
    card = ModelCard.load(result.output_dir / "README.md")
    assert 'function_to_apply="none", top_k=None)' in card.text


def _csv_with(tmp_path, values):
    rows = [{"text": row["text"], "score": value} for row, value in zip(make_rows(len(values)), values, strict=True)]
    return write_csv(tmp_path / "bad" / "scores.csv", rows)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ([1.5, "high", 2.0] * 8, r"must hold numbers for regression; row 1 of the train split holds 'high'"),
        ([1.5, "NaN", 2.0] * 8, r"have no label \('NaN' in label column 'score' marks a missing value"),
        ([1.5, "", 2.0] * 8, r"Row 1 of the train split has no target in column 'score' \(empty\)"),
        ([1.5, "inf", 2.0] * 8, r"Row 1 of the train split has the target inf in column 'score'; regression needs finite"),
        ([3.0] * 24, r"Target 'score' is 3 in every training row: there is nothing to learn"),
    ],
    ids=["text", "nan", "empty", "inf", "constant"],
)
def test_bad_targets_are_refused_before_any_model_is_built(values, match, no_model_build, tiny_bert_dir, tmp_path):
    with pytest.raises(DataError, match=match) as caught:
        finetune(
            model=tiny_bert_dir, dataset=str(_csv_with(tmp_path, values)), task="text-regression",
            output_dir=str(tmp_path / "out"), **TINY_TRAINING,
        )  # fmt: skip
    assert "\n" not in str(caught.value)


def test_no_dataset_is_one_line_until_a_demo_dataset_exists(no_model_build, tiny_bert_dir, tmp_path):
    task = "image-regression"
    with pytest.raises(ConfigError, match=f"--task {task} has no built-in demo dataset yet; pass --dataset"):
        finetune(model=tiny_bert_dir, task=task, output_dir=str(tmp_path / "out"), **TINY_TRAINING)


def test_text_regression_demo_is_the_vader_lexicon_with_minilm():
    task = get_task("text-regression")
    assert (task.demo_dataset, task.demo_model) == ("vader-lexicon", "sentence-transformers/all-MiniLM-L6-v2")


def test_bad_multi_output_columns_and_class_options_are_refused(score_folder, no_model_build, tiny_bert_dir, tmp_path):
    with pytest.raises(DataError, match=r"Target column 'valence' not found in the train split; columns are: text, score, arousal"):
        _train(score_folder, tiny_bert_dir, tmp_path, label_column="score,valence")
    with pytest.raises(DataError, match="names a column twice"):
        _train(score_folder, tiny_bert_dir, tmp_path, label_column="score,score")
    with pytest.raises(ConfigError, match="apply to classification, not text-regression"):
        _train(score_folder, tiny_bert_dir, tmp_path, label_column="score", label_smoothing_factor=0.1)


@pytest.mark.parametrize("method", STANDALONE_METHODS)  # every registered method but distillation (needs a teacher)
def test_each_method_saves_a_model_that_reloads_with_the_same_outputs(method, score_folder, tiny_bert_dir, tmp_path):
    extra = {"lora_r": 4} if method == "lora" else {}
    result = _train(score_folder, tiny_bert_dir, tmp_path, label_column="score", method=method, max_steps=3, **extra)
    assert np.isfinite(result.metrics["test_mse"])
    tokenizer = AutoTokenizer.from_pretrained(result.output_dir)
    batch = tokenizer([row["text"] for row in _test_rows(score_folder)], padding=True, return_tensors="pt")
    trained = result.trainer.accelerator.unwrap_model(result.trainer.model).eval()
    with torch.no_grad():
        expected = trained(**batch).logits
        saved = AutoModelForSequenceClassification.from_pretrained(result.output_dir).eval()
        torch.testing.assert_close(saved(**batch).logits, expected, rtol=1e-4, atol=1e-4)
        adapter = result.output_dir / "adapter"
        if adapter.is_dir():  # a PEFT method: the head is saved with the adapter, already folded
            base = AutoModelForSequenceClassification.from_pretrained(
                tiny_bert_dir, num_labels=1, problem_type="regression"
            )
            reloaded = PeftModel.from_pretrained(base, adapter).eval()
            torch.testing.assert_close(reloaded(**batch).logits, expected, rtol=1e-4, atol=1e-4)
    assert abs(expected.mean().item() - 55) < 15  # original units whatever the method


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_resumed_run_ends_bit_equal(method, score_folder, tiny_bert_dir, tmp_path, batches, monkeypatch):  # noqa: F811
    # checkpoints hold the standardised head (their config says folded_into_head false); the fold comes at the end
    options = dict(
        model=tiny_bert_dir, dataset=str(score_folder), task="text-regression", label_column="score", method=method,
        per_device_train_batch_size=4, per_device_eval_batch_size=8, disable_tqdm=True, eval_strategy="no",
        learning_rate=1e-3, **RESUME_TRAINING,
    )  # fmt: skip
    reference = finetune(**options, output_dir=str(tmp_path / "reference"))
    reference_batches = list(batches)
    batches.clear()
    resumed, _ = stop_and_resume(options, 5, tmp_path / "resumed", batches, monkeypatch)
    if method == "full":  # a LoRA checkpoint holds the adapter alone
        checkpoint = json.loads((tmp_path / "resumed" / "checkpoint-5" / "config.json").read_text())
        assert checkpoint["regression_targets"]["folded_into_head"] is False
    assert_same_run(reference, resumed, reference_batches, batches)
    assert resumed.metrics["test_mse"] == reference.metrics["test_mse"]


def test_errors_are_minimised_scores_maximised(tmp_path):
    task = get_task("text-regression")
    assert _objective(task, HftlTrainingArguments(output_dir=str(tmp_path))) == (("eval_r2",), "maximize")
    for metric, direction in (("mse", "minimize"), ("eval_rmse", "minimize"), ("mae", "minimize"), ("pearson", "maximize")):
        args = HftlTrainingArguments(output_dir=str(tmp_path), metric_for_best_model=metric)
        assert _objective(task, args) == ((f"eval_{metric.removeprefix('eval_')}",), direction)
        task.adjust_training_args(args)  # what the Trainer's best checkpoint and early stopping follow
        assert args.greater_is_better is (direction == "maximize")
    explicit = HftlTrainingArguments(output_dir=str(tmp_path), metric_for_best_model="r2", greater_is_better=False)
    assert _objective(task, explicit)[1] == "minimize"  # an explicit --greater_is_better stands
    classification = HftlTrainingArguments(output_dir=str(tmp_path), metric_for_best_model="accuracy")
    assert _objective(get_task("text-classification"), classification)[1] == "maximize"


def test_distillation_needs_a_regression_teacher_before_any_model(score_folder, no_model_build, tiny_bert_dir, tmp_path):
    assert get_task("text-regression").distillable and get_task("text-classification").distillable
    with pytest.raises(ConfigError, match="needs a regression teacher"):
        _train(score_folder, tiny_bert_dir, tmp_path, label_column="score", method="distill", teacher=tiny_bert_dir)


@pytest.mark.parametrize("backbone", ["tiny_vit", "tiny_resnet", "tiny_timm"])
def test_image_regression_from_a_csv_of_paths(backbone, request, tmp_path):
    folder = tmp_path / "images"
    (folder / "img").mkdir(parents=True)
    rows, rng = [], np.random.default_rng(0)
    for index in range(36):
        brightness = float(rng.uniform(20, 235))
        pixels = np.clip(brightness + rng.normal(0, 10, (40, 40, 3)), 0, 255).astype("uint8")
        Image.fromarray(pixels).save(folder / "img" / f"{index}.png")
        rows.append({"image": f"img/{index}.png", "brightness": round(brightness, 2)})
    csv_path = write_csv(folder / "brightness.csv", rows)
    result = finetune(
        model=request.getfixturevalue(backbone), dataset=str(csv_path), task="image-regression",
        label_column="brightness", output_dir=str(tmp_path / "out"), learning_rate=1e-3, image_size=32, **TINY_TRAINING,
    )  # fmt: skip
    assert {f"test_{name}" for name in METRICS} <= set(result.metrics)
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["regression_targets"]["folded_into_head"] is True
    assert (result.output_dir / "predicted_vs_true.png").is_file()
    predict = pipeline("image-classification", model=str(result.output_dir), function_to_apply="none", device="cpu")
    value = predict(Image.open(folder / "img" / "0.png"))[0]
    assert value["label"] == "brightness" and 40 < value["score"] < 220  # original units (mean about 128)
    card = ModelCard.load(result.output_dir / "README.md")
    assert f'pipeline("image-classification", model="{result.output_dir.name}", function_to_apply="none")' in card.text
