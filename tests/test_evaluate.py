"""hftl evaluate: a saved model scored again reproduces its run's test metrics (single- and multi-label),
writes the report and confusion matrix into a folder of the user's choice, and refuses bad input in one
line."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from hftl import finetune
from hftl.commands import evaluate as evaluate_command
from hftl.errors import ConfigError, DataError, HftlError
from hftl.inference import evaluate, load_saved_model
from hftl.inference.evaluate import EVALUATION_FILE, run_command

from .conftest import TINY_TRAINING, make_rows, write_csv
from .test_multi_label import multi_label_rows, write_jsonl
from .test_regression import _rows as regression_rows

SKIPPED_KEYS = ("_runtime", "_per_second", "_preparation_time")


@pytest.fixture(scope="module")
def runs(tiny_bert_dir, tmp_path_factory) -> dict[str, Path]:
    """A single-label, a multi-label and a regression tiny run (2-4 steps each), trained once for the
    module."""
    folder = tmp_path_factory.mktemp("evaluate-runs")
    single = write_csv(folder / "topics.csv", make_rows(60))
    multi = write_jsonl(folder / "multi.jsonl", multi_label_rows(60))
    scores = write_csv(folder / "scores.csv", regression_rows(60))
    out = {}
    for name, data, steps, rate in (
        ("single", single, 2, 1e-2), ("multi", multi, 4, 0.1), ("regression", scores, 2, 1e-3)
    ):  # fmt: skip
        # the multi-label run learns enough in 4 steps at 0.1 to tune a threshold other than 0.5 (0.3)
        options = {**TINY_TRAINING, "max_steps": steps}
        if name == "regression":  # targets far from 0 with a spread: the loss is in standardised units
            options.update(task="text-regression", label_column="score")
        result = finetune(
            model=tiny_bert_dir,
            dataset=str(data),
            output_dir=str(folder / name),
            learning_rate=rate,
            **options,
        )
        out[name] = result.output_dir
    return out


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def _assert_reproduces(metrics: dict, run_dir: Path) -> None:
    saved = json.loads((run_dir / "all_results.json").read_text())
    compared = [key for key in metrics if key.startswith("test_") and not key.endswith(SKIPPED_KEYS)]
    assert {"test_loss", "test_samples"} <= set(compared)
    for key in compared:
        if key == "test_loss":
            assert math.isclose(metrics[key], saved[key], rel_tol=1e-6), key
        else:
            assert metrics[key] == saved[key], key  # accuracy, F1, mAP: identical


@pytest.mark.parametrize("kind", ["single", "multi", "regression"])
def test_evaluate_reproduces_the_runs_test_metrics(runs, tmp_path, kind):
    before = _files(runs[kind])
    result = evaluate(runs[kind], output_dir=tmp_path / "eval")
    _assert_reproduces(result.metrics, runs[kind])
    saved = json.loads((runs[kind] / "all_results.json").read_text())
    if kind == "multi":  # the tuned threshold applied, as the run's test scores had it
        assert result.metrics["threshold"] == saved["threshold"] != 0.5
        assert "test_micro_f1" in result.metrics and "test_mAP" in result.metrics
    elif kind == "regression":
        assert "test_pearson" in result.metrics and "test_rmse" in result.metrics
        return  # its plot is the predicted-vs-true scatter, not a confusion matrix
    else:
        assert "test_accuracy" in result.metrics
    written = sorted(p.name for p in (tmp_path / "eval").iterdir())
    assert written == sorted(
        ["all_results.json", "test_report.json", "confusion_matrix.png", EVALUATION_FILE]
    )
    assert json.loads((tmp_path / "eval" / "test_report.json").read_text()) == json.loads(
        (runs[kind] / "test_report.json").read_text()
    )
    assert _files(runs[kind]) == before  # the model folder is never touched


def test_the_command_prints_the_metrics(runs, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    evaluate_command.add_arguments(parser)
    run_command(parser.parse_args([str(runs["single"]), "--output_dir", str(tmp_path / "eval")]))
    printed = dict(line.split() for line in capsys.readouterr().out.splitlines())
    saved = json.loads((runs["single"] / "all_results.json").read_text())
    assert float(printed["test_accuracy"]) == pytest.approx(saved["test_accuracy"], abs=1e-4)
    assert evaluate_command.ENTRY == "hftl.inference.evaluate:run_command"


def test_evaluate_on_a_file_scores_its_rows(runs, tmp_path):
    """The run's test rows written to a CSV with their label names score as the run's test split did; a
    single file is all one split; the model's adapter-free reload and its label order are used."""
    saved = load_saved_model(runs["single"])
    test = saved.run_test_split()
    rows = [
        {"text": text, "label": saved.labels.names[label]}
        for text, label in zip(test["text"], test["labels"], strict=True)
    ]
    data = write_csv(tmp_path / "test.csv", rows)
    result = evaluate(saved, str(data), output_dir=tmp_path / "eval")
    _assert_reproduces(result.metrics, runs["single"])


def test_a_rerun_replaces_its_own_files(runs, tmp_path):
    evaluate(runs["single"], output_dir=tmp_path / "eval")
    evaluate(runs["single"], output_dir=tmp_path / "eval")  # the folder holds an evaluation: replaced
    assert (tmp_path / "eval" / "all_results.json").is_file()


def _one_line(error: HftlError) -> str:
    message = str(error)
    assert "\n" not in message and message
    return message


def test_bad_inputs_are_one_line_and_write_nothing(runs, tmp_path, tiny_bert_dir):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    cases = [
        (lambda: evaluate(runs["single"], output_dir=foreign), ConfigError, "didn't write"),
        (lambda: evaluate(runs["single"], output_dir=runs["single"] / "eval"), ConfigError, "inside the model folder"),
        (lambda: evaluate(tmp_path / "no-model", output_dir=tmp_path / "e1"), HftlError, "not a directory"),
        (lambda: evaluate(runs["single"], str(tmp_path / "missing.csv"), output_dir=tmp_path / "e2"), DataError, "does not exist"),
    ]  # fmt: skip
    unknown = write_csv(tmp_path / "unknown.csv", [{"text": "the team won", "label": "weather"}])
    cases.append(
        (
            lambda: evaluate(runs["single"], str(unknown), output_dir=tmp_path / "e3"),
            DataError,
            "doesn't know",
        )
    )
    cases.append(
        (lambda: evaluate(runs["single"], output_dir=tmp_path / "e4", split="holdout"), DataError, "no split")
    )
    bare = tmp_path / "bare"  # a saved model without its run's config: no test split to re-create
    model = load_saved_model(runs["single"])
    model.model.save_pretrained(bare)
    model.processor.save_pretrained(bare)
    cases.append((lambda: evaluate(bare, output_dir=tmp_path / "e5"), DataError, "pass the labelled data"))
    for call, kind, words in cases:
        with pytest.raises(kind) as caught:
            call()
        assert words in _one_line(caught.value), caught.value
    assert (foreign / "mine.txt").read_text() == "keep me" and len(list(foreign.iterdir())) == 1
    assert not any((tmp_path / name).exists() for name in ("e1", "e2", "e3", "e4", "e5"))
    assert not (runs["single"] / "eval").exists()


def test_multi_label_without_a_threshold_is_one_line(runs, tmp_path):
    model = load_saved_model(runs["multi"])
    del model.model.config.multi_label_threshold
    model.threshold = None
    with pytest.raises(ConfigError, match="no saved decision threshold"):
        evaluate(model, output_dir=tmp_path / "eval")
    assert not (tmp_path / "eval").exists()


def test_report_rows_are_per_class(runs, tmp_path):
    evaluate(runs["single"], output_dir=tmp_path / "eval")
    report = json.loads((tmp_path / "eval" / "test_report.json").read_text())
    assert {"politics", "sport", "tech"} <= set(report)
    assert "test_accuracy" in json.loads((tmp_path / "eval" / "all_results.json").read_text())
