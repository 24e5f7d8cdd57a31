"""Few labels: the auto budget adapts to the training set's size and says why, a run too short to learn is
warned about, a carve that leaves a class without training rows is one line, and the few-shot benchmark's
k-shot draw is balanced, seeded, nested and never touches its test rows."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hftl import DataError, finetune
from hftl.techniques import budget
from hftl.techniques.budget import training_budget
from hftl.techniques.head_fit import AUTO_MAX_ROWS, wants_head_fit

from .conftest import REPO, TINY_TRAINING, make_rows, write_csv


@pytest.mark.parametrize("batch", [8, 16, 64])
def test_the_budget_gives_small_sets_enough_steps_and_large_sets_fewer_passes(batch):
    sizes = [4, 10, 40, 80, 160, 320, 1_000, 10_000, 100_000, 1_000_000, 10_000_000]
    chosen = {rows: training_budget(rows, batch) for rows in sizes}
    epochs = [chosen[rows].epochs for rows in sizes]
    assert epochs == sorted(epochs, reverse=True)  # more data, never more passes
    for rows, plan in chosen.items():
        per_epoch = -(-rows // batch)
        assert plan.steps == plan.epochs * per_epoch
        assert 1 <= plan.epochs <= budget.MAX_EPOCHS
        # small sets: at least MIN_STEPS optimizer steps unless the epoch cap binds
        assert plan.steps >= budget.MIN_STEPS or plan.epochs == budget.MAX_EPOCHS or plan.epochs == 3
        # large sets see at least every row once, and no more than three times
        assert plan.epochs * rows >= min(rows, budget.MAX_EXAMPLES_SEEN) or plan.epochs == 3
    if batch == 16:
        assert chosen[1_000].epochs == 3  # the usual budget in the middle
    assert chosen[10_000_000].epochs == 1
    assert chosen[40].epochs > 3 and str(chosen[40].steps) in chosen[40].reason


def test_a_no_flag_run_on_a_small_set_chooses_its_budget_and_says_why(tiny_bert_dir, tmp_path, capfd):
    data = write_csv(tmp_path / "d" / "train.csv", make_rows(24))
    write_csv(tmp_path / "d" / "test.csv", make_rows(6, seed=3))
    options = {k: v for k, v in TINY_TRAINING.items() if k != "max_steps"}
    result = finetune(
        model=tiny_bert_dir, dataset=str(data.parent), output_dir=str(tmp_path / "o"), **options
    )
    err = capfd.readouterr().err
    rows = result.metrics["train_samples"]
    expected = training_budget(rows, TINY_TRAINING["per_device_train_batch_size"])
    assert f"num_train_epochs={expected.epochs:g} ({expected.reason})" in err
    assert result.metrics["epoch"] == pytest.approx(expected.epochs)
    assert "warning: this run makes only" not in err


def test_a_run_too_short_to_learn_is_one_warning_line(tiny_options, capfd):
    finetune(**tiny_options)  # max_steps 2
    lines = [line for line in capfd.readouterr().err.splitlines() if "optimizer step(s)" in line]
    assert lines == [
        "[hftl] warning: this run makes only 2 optimizer step(s); a new head rarely learns in fewer than 20. "
        "Leave --num_train_epochs and --max_steps on auto, or raise them."
    ]


def test_one_example_per_class_is_one_line_before_any_model_loads(tiny_bert_dir, tmp_path, no_model_build):
    write_csv(tmp_path / "d" / "train.csv", make_rows(3))  # one per class, no test file: carving takes one
    with pytest.raises(DataError, match=r"^Carving the test split from train left no training example of '"):
        finetune(
            model=tiny_bert_dir, dataset=str(tmp_path / "d"), output_dir=str(tmp_path / "o"), **TINY_TRAINING
        )
    assert not (tmp_path / "o").exists()


def test_few_examples_per_class_all_train_and_one_example_is_a_warning(tiny_bert_dir, tmp_path, capfd):
    write_csv(
        tmp_path / "d" / "train.csv", make_rows(3) + [r for r in make_rows(9, seed=1) if r["label"] != "tech"]
    )
    write_csv(tmp_path / "d" / "test.csv", make_rows(6, seed=2))
    options = {k: v for k, v in TINY_TRAINING.items() if k not in ("max_steps", "eval_strategy")}
    result = finetune(
        model=tiny_bert_dir, dataset=str(tmp_path / "d"), output_dir=str(tmp_path / "o"), **options
    )
    err = capfd.readouterr().err
    assert result.metrics["train_samples"] == 9 and result.metrics["eval_samples"] == 9  # nothing held out
    assert (
        "[hftl] validation: 1 of 9 training rows can't hold one example of each of the 3 classes, so none are held "
        "out: all train" in err
    )
    assert "[hftl] warning: 1 class(es) have a single training example ('tech')" in err
    assert "[hftl] eval_strategy no: the validation split is the training rows" in err
    assert "validation rows have the same" not in err  # no overlap warning for the training rows themselves
    card = (tmp_path / "o" / "README.md").read_text()
    assert "- **Validation:** the training rows themselves (too few examples per class to hold any out)" in card


def test_a_class_with_no_training_examples_is_one_line(tiny_bert_dir, tmp_path, no_model_build):
    write_csv(tmp_path / "d" / "train.csv", [r for r in make_rows(30) if r["label"] != "tech"])
    write_csv(tmp_path / "d" / "test.csv", make_rows(6, seed=2))
    with pytest.raises(DataError, match=r"^The test split has labels the train split lacks \('tech'\)"):
        finetune(
            model=tiny_bert_dir, dataset=str(tmp_path / "d"), output_dir=str(tmp_path / "o"), **TINY_TRAINING
        )


def _bench():
    spec = importlib.util.spec_from_file_location("few_shot", REPO / "benchmarks" / "few_shot.py")
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return module


def test_the_benchmarks_k_shot_draw_is_balanced_seeded_nested_and_leaves_the_test_rows_alone():
    bench = _bench()
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    texts = [f"text {i}" for i in range(len(labels))]
    pool, test = bench.split_pool(texts, labels, test_size=20)
    assert Counter(test["label"]) == {"a": 10, "b": 6, "c": 4}  # stratified
    assert not set(pool["text"]) & set(test["text"]) and len(pool["text"]) + 20 == 100
    eight = bench.k_shot(pool, 8, seed=1)
    assert Counter(eight["label"]) == {"a": 8, "b": 8, "c": 8}
    assert bench.k_shot(pool, 8, seed=1) == eight  # seeded
    four = bench.k_shot(pool, 4, seed=1)
    assert set(four["text"]) < set(eight["text"])  # nested
    assert set(bench.k_shot(pool, 8, seed=2)["text"]) != set(eight["text"])
    assert not set(eight["text"]) & set(test["text"])
    with pytest.raises(SystemExit, match="class 'c' has 16 pool rows, fewer than k=17"):
        bench.k_shot(pool, 17, seed=0)


def test_fit_head_is_chosen_for_small_single_label_sets_and_said_in_one_line():
    assert wants_head_fit(None, 40, True, True)[0]
    assert not wants_head_fit(None, AUTO_MAX_ROWS + 1, True, True)[0]  # large sets: the random head is fine
    assert wants_head_fit(True, AUTO_MAX_ROWS + 1, True, True) == (
        True, "fit_head: the new head starts as a logistic regression on the pretrained features (asked)"
    )  # fmt: skip
    assert wants_head_fit(False, 40, True, True) == (False, "")
    assert wants_head_fit(None, 40, False, True) == (False, "")  # multi-label, regression: not fitted
    assert wants_head_fit(True, 40, False, True) == (
        False,
        "--fit_head: skipped, it fits single-label classifiers",
    )


def test_the_fitted_head_starts_where_a_logistic_regression_ends(tiny_bert_dir, text_csv, tmp_path, capfd):
    # a learning rate too small to move anything: what is saved is the starting point
    still = dict(TINY_TRAINING, max_steps=1, learning_rate=1e-12, model=tiny_bert_dir, dataset=str(text_csv))
    finetune(**still, output_dir=str(tmp_path / "fit"), fit_head=True)
    fitted_line = [line for line in capfd.readouterr().err.splitlines() if "training accuracy" in line]
    finetune(**still, output_dir=str(tmp_path / "random"), fit_head=False)
    assert "logistic regression on" not in capfd.readouterr().err
    fit, random = (load_file(tmp_path / name / "model.safetensors") for name in ("fit", "random"))
    body = [k for k in fit if not k.startswith("classifier.")]  # untouched but for 1e-12-sized steps
    assert all(torch.allclose(fit[k], random[k], rtol=0, atol=1e-9) for k in body)
    assert not torch.equal(fit["classifier.weight"], random["classifier.weight"])
    accuracy = float(fitted_line[0].rsplit(" ", 1)[1])
    assert (
        fitted_line[0].startswith("[hftl] fit_head: logistic regression on 48 rows' features")
        and accuracy > 0.4
    )
    # through the saved models: the fitted head separates the (tiny, random-weight) model's texts better than
    # the random head it replaced, on the same features
    rows = make_rows(60)
    scores = []
    for name in ("fit", "random"):
        model = AutoModelForSequenceClassification.from_pretrained(tmp_path / name).eval()
        tokenizer = AutoTokenizer.from_pretrained(tmp_path / name)
        with torch.no_grad():
            logits = model(**tokenizer([r["text"] for r in rows], padding=True, return_tensors="pt")).logits
        names = [model.config.id2label[i] for i in logits.argmax(-1).tolist()]
        scores.append(sum(n == r["label"] for n, r in zip(names, rows, strict=True)) / len(rows))
    assert scores[0] > scores[1] + 0.05, scores
