"""The transfer-gain study's protocol: ``samples_per_class`` draws exactly k rows per class, the same rows for
the same seed (nested across k), the test set never moves; benchmarks/transfer_curve.py runs, saves each run
and resumes without recomputing."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter

import datasets
import pytest

from hftl import ConfigError, DataArguments, DataError
from hftl.data import prepare_data
from hftl.options.parser import make_parser
from hftl.tasks import get_task

from .conftest import REPO, make_rows, write_csv

TEXT = get_task("text-classification")


@pytest.fixture
def folder(tmp_path):
    """train: 20 sport, 20 tech, 5 politics (a class smaller than k); validation 6 rows; test 12 rows."""
    rows = [row for row in make_rows(60) if row["label"] != "politics"] + make_rows(15)[2::3]
    write_csv(
        tmp_path / "data" / "train.csv", [{**row, "text": f"{i} {row['text']}"} for i, row in enumerate(rows)]
    )
    write_csv(tmp_path / "data" / "validation.csv", make_rows(6, seed=4))  # else carved with split_seed
    write_csv(tmp_path / "data" / "test.csv", make_rows(12, seed=5))
    return tmp_path / "data"


def draw(folder, **options):
    data = prepare_data(DataArguments(dataset=str(folder), **options), TEXT)
    names = data.labels.names
    train = data.splits["train"]
    return (
        Counter(names[label] for label in train["labels"]),
        set(train["text"]),
        set(data.unlabelled["text"]) if data.unlabelled is not None else set(),
        data.splits["test"]["text"],
    )


def test_samples_per_class_is_exact_seeded_nested_and_leaves_the_test_set_alone(folder, capfd):
    counts, eight, rest, test = draw(folder, samples_per_class=8, split_seed=1)
    assert counts == {"sport": 8, "tech": 8, "politics": 5}  # all 5 of the smaller class, said in one line
    said = [line for line in capfd.readouterr().err.splitlines() if "classes that have fewer" in line]
    assert said == ["[hftl] samples_per_class 8: all rows of the classes that have fewer: politics 5"]
    assert len(rest) == 45 - 21 and not rest & eight  # the other rows are the unlabelled rest
    assert draw(folder, samples_per_class=8, split_seed=1)[1] == eight  # same seed, same rows
    four = draw(folder, samples_per_class=4, split_seed=1)[1]
    assert len(four) == 12 and four < eight  # a smaller k takes rows of a larger k's draw
    other_counts, other, _, other_test = draw(folder, samples_per_class=8, split_seed=2)
    assert other_counts == counts and other != eight  # another seed, other rows, same counts
    assert other_test == test  # the given test split never moves


def test_samples_per_class_is_a_flag_and_a_yaml_key(tmp_path):
    (tmp_path / "run.yaml").write_text("samples_per_class: 16\n")
    assert make_parser().parse(["--samples_per_class", "4"])[1].samples_per_class == 4
    assert make_parser().parse(["--config", str(tmp_path / "run.yaml")])[1].samples_per_class == 16


def test_samples_per_class_options_are_checked():
    with pytest.raises(ConfigError, match="--samples_per_class must be at least 1"):
        DataArguments(samples_per_class=0)
    with pytest.raises(ConfigError, match="give one of them"):
        DataArguments(samples_per_class=4, label_fraction=0.5)


def test_samples_per_class_refuses_multi_label(tmp_path):
    rows = [{"text": f"t{i}", "label": ["a,b", "a", "b"][i % 3]} for i in range(30)]
    path = write_csv(tmp_path / "multi.csv", rows)
    with pytest.raises(DataError, match="multi-label, so use --label_fraction"):
        prepare_data(DataArguments(dataset=str(path), label_delimiter=",", samples_per_class=2), TEXT)


def load_study(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location("transfer_curve", REPO / "benchmarks" / "transfer_curve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_study_runs_every_method_on_the_same_k_and_resumes(folder, tiny_bert_dir, tmp_path, monkeypatch):
    study = load_study(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", datasets.config.HF_DATASETS_CACHE)
    argv = ["--task", "text", "--tiny", "--model", tiny_bert_dir, "--dataset", str(folder), "--out", "report",
            "--k", "2", "--seeds", "0", "--methods", "full,distill", "--student_layers", "1",
            "--verbose"]  # fmt: skip
    study.main(argv)
    lines = (tmp_path / "report" / "transfer-text.jsonl").read_text().splitlines()
    rows = {(row["method"], row["k"]): row for row in map(json.loads, lines)}
    assert len(rows) == len(lines) == 2
    # --tiny keeps 6 training rows per class (5 of politics, 17 in all); k=2 labels 2 per class
    assert rows["full", 2]["train_rows"] == 6
    assert rows["distill", 2]["train_rows"] == 17  # the student also learns from the 11 unlabelled rows
    assert all(0.0 <= row["accuracy"] <= 1.0 for row in rows.values())
    assert not list((tmp_path / "outputs" / "transfer-text-tiny").glob("teacher-*"))  # teachers removed

    study.main(argv)  # resumed: nothing left to run
    assert (tmp_path / "report" / "transfer-text.jsonl").read_text().splitlines() == lines
    study.main([*argv, "--replot"])
    report = (tmp_path / "report" / "transfer-text.md").read_text()
    assert "| full fine-tuning | " in report and "| distilled student (1 layers) | " in report
    assert (tmp_path / "report" / "transfer-text.png").stat().st_size > 10_000
    with pytest.raises(SystemExit, match="another setup"):  # other steps: not mixed with the saved runs
        study.main([*argv, "--steps", "3", "--replot"])
