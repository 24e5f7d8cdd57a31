"""Sentence-embedding pooling (``--pooling``): a sentence-transformers checkpoint trains and predicts on the
pooling it was trained with, folded into a stock architecture that ``pipeline()`` loads; the pooling layer
never trains; adapters and students keep the model's own head, said in one line; bad values are one line."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from hftl import ConfigError, finetune
from hftl.tasks._embedding_pooling import MEAN_SCALE, checkpoint_max_length, checkpoint_pooling

from .conftest import TINY_TRAINING


def as_sentence_transformers(folder, target, mode: str = "mean", max_seq_length: int = 48):
    """A copy of ``folder`` with the files sentence-transformers writes (modules.json, 1_Pooling, ...)."""
    shutil.copytree(folder, target)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (target / "modules.json").write_text(json.dumps(modules))
    (target / "1_Pooling").mkdir(exist_ok=True)
    flags = {f"pooling_mode_{m}": m == {"mean": "mean_tokens", "cls": "cls_token", "max": "max_tokens"}[mode]
             for m in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")}  # fmt: skip
    (target / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **flags}))
    (target / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length}))
    return target


@pytest.fixture(scope="module")
def st_dir(tiny_bert_dir, tmp_path_factory):
    return as_sentence_transformers(tiny_bert_dir, tmp_path_factory.mktemp("st") / "model")


@pytest.fixture(scope="module")
def mean_run(st_dir, tmp_path_factory):
    """A full fine-tuning run on the sentence-transformers copy (pooling auto -> mean)."""
    from .conftest import make_rows, write_csv

    folder = tmp_path_factory.mktemp("mean-run")
    data = write_csv(folder / "topics.csv", make_rows(60))
    options = dict(TINY_TRAINING, model=str(st_dir), dataset=str(data), output_dir=str(folder / "out"))
    result = finetune(**options)
    return result, folder / "out"


def test_the_checkpoints_pooling_and_length_are_read_from_its_sentence_transformers_files(st_dir, tmp_path):
    assert checkpoint_pooling(st_dir) == "mean" and checkpoint_max_length(st_dir) == 48
    assert (
        checkpoint_pooling(as_sentence_transformers(st_dir.parent / "model", tmp_path / "c", "cls")) == "cls"
    )
    assert (
        checkpoint_pooling(as_sentence_transformers(st_dir.parent / "model", tmp_path / "m", "max")) == "max"
    )
    assert checkpoint_pooling(tmp_path) is None  # not a sentence-transformers folder
    (tmp_path / "modules.json").write_text("{not json")
    assert checkpoint_pooling(tmp_path) is None


def test_mean_pooling_is_folded_into_a_stock_model_that_pipeline_loads(mean_run, st_dir):
    result, out = mean_run
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 3  # the tiny backbone's 2 + the pooling layer
    assert "pooling: mean" in (out / "hftl_config.yaml").read_text()  # a rerun folds the same pooling
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    texts = ["goal match team striker", "the election vote minister", "a"]
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        outputs = model.bert(**encoded, output_hidden_states=True)
    tokens, mask = outputs.hidden_states[-2], encoded["attention_mask"].unsqueeze(-1).float()
    mean = (tokens * mask).sum(1) / mask.sum(1)  # sentence-transformers' mean pooling of the last layer
    expected = torch.nn.functional.layer_norm(mean + tokens[:, 0] / MEAN_SCALE, mean.shape[-1:], eps=1e-12)
    assert torch.allclose(outputs.last_hidden_state[:, 0], expected, atol=1e-4)
    # padding changes nothing: each text alone gives the [CLS] vector it got in the padded batch
    alone = model.bert(**tokenizer(texts[2:], return_tensors="pt")).last_hidden_state[:, 0]
    assert torch.allclose(alone, outputs.last_hidden_state[2:, 0], atol=1e-4)
    # save -> load -> predict: pipeline() on the saved folder (no hftl, no trust_remote_code) equals the model
    classify = pipeline("text-classification", model=str(out), top_k=None)
    for text in texts:
        with torch.no_grad():
            probs = model(**tokenizer(text, return_tensors="pt")).logits.softmax(-1)[0]
        scores = {row["label"]: row["score"] for row in classify([text])[0]}
        assert [scores[model.config.id2label[i]] for i in range(len(probs))] == pytest.approx(
            probs.tolist(), abs=1e-5
        )


def test_the_pooling_layer_never_trains(mean_run, st_dir):
    _, out = mean_run
    saved = load_file(out / "model.safetensors")
    layer = "bert.encoder.layer.2."
    hidden = saved[layer + "attention.self.query.weight"].shape[0]
    assert (
        not saved[layer + "attention.self.query.weight"].any()
        and not saved[layer + "attention.self.key.weight"].any()
    )
    assert torch.equal(saved[layer + "attention.self.value.weight"], torch.eye(hidden))
    assert torch.equal(saved[layer + "attention.output.dense.weight"], MEAN_SCALE * torch.eye(hidden))
    assert not saved[layer + "output.dense.weight"].any() and not saved[layer + "output.dense.bias"].any()
    before = load_file(st_dir / "model.safetensors")
    changed = [
        k
        for k in before
        if k.startswith("encoder.layer.1.") and not torch.equal(before[k], saved["bert." + k])
    ]
    assert changed  # the layers below it did train (full fine-tuning)


def test_linear_probe_trains_only_the_classifier_on_the_mean(st_dir, text_csv, tmp_path, capfd):
    out = tmp_path / "probe"
    finetune(**dict(TINY_TRAINING, model=str(st_dir), dataset=str(text_csv), output_dir=str(out),
                    method="linear-probe"))  # fmt: skip
    assert (
        "pooling: mean pooling (as the sentence-transformers checkpoint was trained)"
        in capfd.readouterr().err
    )
    saved, before = load_file(out / "model.safetensors"), load_file(st_dir / "model.safetensors")
    assert all(torch.equal(before[k], saved["bert." + k]) for k in before if not k.startswith("pooler."))
    assert torch.equal(saved["bert.pooler.dense.weight"], torch.eye(32))  # the identity before tanh


def test_adapters_keep_the_models_own_head_and_say_why(st_dir, text_csv, tmp_path, capfd):
    out = tmp_path / "lora"
    finetune(
        **dict(TINY_TRAINING, model=str(st_dir), dataset=str(text_csv), output_dir=str(out), method="lora")
    )
    err = capfd.readouterr().err
    assert "pooling: the checkpoint was trained with mean pooling, but --method lora saves against" in err
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            dict(method="lora", pooling="mean"),
            "--pooling mean: --method lora saves against the base checkpoint",
        ),
        (dict(pooling="median"), "Unknown --pooling 'median'; choose auto, mean, cls or model."),
        (
            dict(student_layers=1, pooling="cls"),
            "--pooling cls: --student_layers keeps the first layers only",
        ),
    ],
)
def test_a_pooling_that_cant_be_held_is_one_line_before_any_model_loads(
    options, message, st_dir, text_csv, tmp_path, no_model_build
):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace("-", r"\-")):
        finetune(
            **dict(
                TINY_TRAINING,
                model=str(st_dir),
                dataset=str(text_csv),
                output_dir=str(tmp_path / "o"),
                **options,
            )
        )
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_pooling_mean_on_a_plain_checkpoint_and_model_on_a_sentence_transformers_one(
    tiny_bert_dir, st_dir, text_csv, tmp_path
):
    asked = tmp_path / "asked"
    finetune(
        **dict(
            TINY_TRAINING, model=tiny_bert_dir, dataset=str(text_csv), output_dir=str(asked), pooling="mean"
        )
    )
    assert json.loads((asked / "config.json").read_text())["num_hidden_layers"] == 3
    stock = tmp_path / "stock"
    finetune(
        **dict(
            TINY_TRAINING, model=str(st_dir), dataset=str(text_csv), output_dir=str(stock), pooling="model"
        )
    )
    assert json.loads((stock / "config.json").read_text())["num_hidden_layers"] == 2
