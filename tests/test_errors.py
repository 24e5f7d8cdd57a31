"""Every bad input to finetune() is one actionable line, raised before a model is built, losing nothing."""

from __future__ import annotations

import pytest

from hftl import ConfigError, DataError, DatasetNotFoundError, HftlError, ModelNotFoundError, finetune

from .conftest import make_rows, write_csv


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


def test_unknown_method(refused):
    refused(
        ConfigError,
        "Unknown method 'prune'; choose one of: full, linear-probe, lora, distill.",
        method="prune",
    )


def test_unknown_task(refused):
    refused(ConfigError, "Unknown task 'translation'; choose one of:", task="translation")


def test_unknown_model_offline(refused):
    refused(ModelNotFoundError, "Model 'nobody/missing' not found", model="nobody/missing")


def test_unknown_dataset_offline(refused):
    refused(DatasetNotFoundError, "Dataset 'nobody/missing' is not a local file", dataset="nobody/missing")


def test_missing_label_column(refused):
    refused(DataError, "Label column 'stars' not found; columns are: text, label", label_column="stars")


def test_ambiguous_text_column(refused, tmp_path):
    rows = [{"text": r["text"], "content": r["text"], "label": r["label"]} for r in make_rows(20)]
    path = write_csv(tmp_path / "amb.csv", rows)
    refused(DataError, "Several columns could be the text (text, content)", dataset=str(path))


def test_eval_label_not_in_train(refused, tmp_path):
    folder = tmp_path / "d"
    write_csv(folder / "train.csv", make_rows(30))
    write_csv(folder / "validation.csv", [{"text": "sunny", "label": "weather"}])
    refused(
        DataError, "The validation split has labels the train split lacks ('weather')", dataset=str(folder)
    )


def test_empty_split(refused, tmp_path):
    folder = tmp_path / "d"
    write_csv(folder / "train.csv", make_rows(30))
    (folder / "test.csv").write_text("text,label\n")
    refused(DataError, "has no rows", dataset=str(folder))


def test_lora_target_matching_no_module(refused):
    refused(
        ConfigError,
        "LoRA target 'q_proj' matches no layer of this bert model; fix --lora_target_modules (layer names here:",
        method="lora",
        lora_target_modules="q_proj",
    )


def test_resume_from_missing_checkpoint(refused, tmp_path):
    refused(
        ConfigError,
        "is not a directory; pass a checkpoint-<step> folder or auto",
        resume_from_checkpoint=str(tmp_path / "nope"),
    )


def test_finished_output_dir_is_not_overwritten(tiny_options, no_model_build, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "all_results.json").write_text('{"test_accuracy": 0.9}')
    fails(
        tiny_options, ConfigError, "already holds a finished run (all_results.json); pass a new --output_dir"
    )
    assert (out / "all_results.json").read_text() == '{"test_accuracy": 0.9}'


def test_errors_share_one_base_class():
    for error_type in (ConfigError, DataError, DatasetNotFoundError, ModelNotFoundError):
        assert issubclass(error_type, HftlError) and issubclass(error_type, ValueError)


def test_user_data_is_not_modified(refused, text_csv):
    before = text_csv.read_bytes()
    refused(DataError, "Label column 'nope' not found", label_column="nope")
    assert text_csv.read_bytes() == before


@pytest.mark.parametrize(
    ("task", "model", "dataset"),
    [
        ("text-classification", "sentence-transformers/all-MiniLM-L6-v2", "bbc-news"),
        ("image-classification", "timm/tf_efficientnet_lite0.in1k", "mnist"),
    ],
)
def test_model_and_dataset_default_to_the_tasks_demo(monkeypatch, tmp_path, task, model, dataset):
    import hftl.api

    seen = {}

    def stop(name, revision=None, weights=None):
        seen["model"] = name
        raise ModelNotFoundError("stop here")

    monkeypatch.setattr(hftl.api, "resolve_model", stop)
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
