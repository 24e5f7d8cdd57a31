"""Errors outside the bad-input table (tests/reliability/test_bad_inputs.py): one actionable line each."""

from __future__ import annotations

import pytest

from hftl import (
    CheckpointError,
    ConfigError,
    DataError,
    DatasetNotFoundError,
    HftlError,
    ModelNotFoundError,
    finetune,
)


def fails(options, error_type, message):
    with pytest.raises(error_type) as error:
        finetune(**options)
    text = str(error.value)
    assert message in text, text
    assert "\n" not in text
    return text


@pytest.fixture
def refused(tiny_options, no_model_build, tmp_path):
    """Run finetune with changed options, expect a one-line error, and check nothing was written."""

    def check(error_type, message, **changes):
        options = {**tiny_options, **changes}
        fails(options, error_type, message)
        assert not (tmp_path / "out").exists()

    return check


def test_unknown_model_offline(refused):
    refused(ModelNotFoundError, "Model 'nobody/missing' not found", model="nobody/missing")


def test_unknown_dataset_offline(refused):
    refused(DatasetNotFoundError, "Dataset 'nobody/missing' is not a local file", dataset="nobody/missing")


def test_resume_from_missing_checkpoint(refused, tmp_path):
    refused(
        CheckpointError,
        "is not a directory; pass a checkpoint-<step> folder or auto",
        resume_from_checkpoint=str(tmp_path / "nope"),
    )


def test_errors_share_one_base_class():
    for error_type in (ConfigError, DataError, DatasetNotFoundError, ModelNotFoundError):
        assert issubclass(error_type, HftlError) and issubclass(error_type, ValueError)


@pytest.mark.parametrize(
    ("task", "model", "dataset"),
    [
        ("text-classification", "sentence-transformers/all-MiniLM-L6-v2", "bbc-news"),
        ("image-classification", "timm/tf_efficientnet_lite0.in1k", "mnist"),
    ],
)
def test_model_and_dataset_default_to_the_tasks_demo(monkeypatch, tmp_path, task, model, dataset):
    import hftl.plan

    seen = {}

    def stop(name, revision=None, weights=None):
        seen["model"] = name
        raise ModelNotFoundError("stop here")

    monkeypatch.setattr(hftl.plan, "resolve_model", stop)
    with pytest.raises(ModelNotFoundError):
        finetune(task=task, output_dir=str(tmp_path / "out"))
    assert seen["model"] == model
    from hftl.tasks import get_task

    assert get_task(task).demo_dataset == dataset


def test_model_directory_without_tokenizer_is_one_line(tiny_bert_dir, text_csv, tmp_path, no_model_build):
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(f"{tiny_bert_dir}/config.json", bare / "config.json")
    shutil.copy(f"{tiny_bert_dir}/model.safetensors", bare / "model.safetensors")
    fails(
        {"model": str(bare), "dataset": str(text_csv), "output_dir": str(tmp_path / "out")},
        ModelNotFoundError,
        "Could not load the config or tokenizer of",
    )
