"""hftl predict: a saved model's predictions are its own outputs, one row per input row in input order,
as CSV or JSONL; unreadable rows are reported and kept in place; every bad input is one line and writes
nothing. One tiny LoRA run (merged model and adapter) is trained for the module; the other kinds of model
(multi-label, regression, token classification, chunked long text, images) are built from configs."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
)

from hftl import finetune
from hftl.commands import predict as predict_command
from hftl.errors import ConfigError, DataError, HftlError
from hftl.inference import load_saved_model, predict
from hftl.inference.predict import run_command

from .conftest import TINY_TRAINING, make_rows, write_csv

TEXTS = ["the team won the cup final", "a new phone chip for data networks", "the minister lost the vote"]
TOPICS = ["politics", "sport", "tech"]
# predict runs on a GPU when there is one, where matmuls may run in TF32; the references run on the CPU
TOL = 1e-4 if torch.cuda.is_available() else 1e-6


def _bert_config(**labels) -> BertConfig:
    return BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, initializer_range=0.5, **labels,
    )  # fmt: skip


def _save(model, tokenizer_dir: str, folder: Path) -> Path:
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def lora_run(tiny_bert_dir, tmp_path_factory) -> Path:
    """One tiny LoRA run: the merged model at the root, the adapter in adapter/."""
    folder = tmp_path_factory.mktemp("predict-run")
    data = write_csv(folder / "topics.csv", make_rows(60))
    result = finetune(
        model=tiny_bert_dir, dataset=str(data), output_dir=str(folder / "out"), method="lora",
        learning_rate=1e-2, **TINY_TRAINING,
    )  # fmt: skip
    return result.output_dir


@pytest.fixture(scope="module")
def built(tiny_bert_dir, tmp_path_factory) -> dict[str, Path]:
    """Saved models of the other kinds, from configs (no training); initialised wide (0.5) so that their
    outputs differ from input to input."""
    folder = tmp_path_factory.mktemp("predict-built")
    torch.manual_seed(0)
    labels = {"id2label": dict(enumerate(TOPICS)), "label2id": {n: i for i, n in enumerate(TOPICS)}}
    out = {}
    single = BertForSequenceClassification(_bert_config(problem_type="single_label_classification", **labels))
    out["single"] = _save(single, tiny_bert_dir, folder / "single")
    multi = BertForSequenceClassification(_bert_config(problem_type="multi_label_classification", **labels))
    multi.config.multi_label_threshold = 0.45
    out["multi"] = _save(multi, tiny_bert_dir, folder / "multi")
    bare = BertForSequenceClassification(_bert_config(problem_type="multi_label_classification", **labels))
    out["multi_no_threshold"] = _save(bare, tiny_bert_dir, folder / "multi-bare")
    regression = BertForSequenceClassification(
        _bert_config(problem_type="regression", num_labels=1, id2label={0: "rating"}, label2id={"rating": 0})
    )
    regression.config.regression_targets = {"mean": [0.0], "std": [1.0], "folded_into_head": True}
    out["regression"] = _save(regression, tiny_bert_dir, folder / "regression")
    tags = ["O", "B-loc", "I-loc", "B-per", "I-per"]
    token = BertForTokenClassification(
        _bert_config(id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)})
    )
    out["token"] = _save(token, tiny_bert_dir, folder / "token")
    chunk = BertForSequenceClassification(_bert_config(problem_type="single_label_classification", **labels))
    chunk.config.hftl_long_text = {"strategy": "chunk", "stride": 4, "max_chunks": None, "aggregation": "mean",
                                   "max_length": 16}  # fmt: skip
    out["chunk"] = _save(chunk, tiny_bert_dir, folder / "chunk")
    vit = ViTForImageClassification(
        ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=64, initializer_range=0.5, num_labels=2, id2label={0: "dark", 1: "light"},
                  label2id={"dark": 0, "light": 1})
    )  # fmt: skip
    vit.save_pretrained(folder / "vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder / "vit")
    out["vit"] = folder / "vit"
    return out


def _logits(folder: Path, texts: list[str], max_length: int = 64) -> torch.Tensor:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(
            **tokenizer(texts, truncation=True, max_length=max_length, return_tensors="pt", padding=True)
        ).logits


@pytest.mark.parametrize("which", ["lora", "single"])
def test_predictions_are_the_models_own_outputs_in_input_order(lora_run, built, tmp_path, which):
    model = (
        lora_run if which == "lora" else built["single"]
    )  # a trained run; a model whose outputs differ more
    ids = ["r3", "r1", "r2"]
    data = write_csv(tmp_path / "in.csv", [{"id": i, "text": t} for i, t in zip(ids, TEXTS, strict=True)])
    rows = predict(model, str(data), all_scores=True)
    expected = torch.softmax(_logits(model, TEXTS).double(), -1).numpy()
    assert [row["id"] for row in rows] == ids
    for row, probabilities in zip(rows, expected, strict=True):
        assert row["label"] == TOPICS[int(probabilities.argmax())]
        assert row["score"] == pytest.approx(probabilities.max(), abs=TOL)
        assert [row["scores"][name] for name in TOPICS] == pytest.approx(list(probabilities), abs=TOL)


def test_an_adapter_only_folder_predicts_as_the_merged_model(lora_run):
    merged = predict(lora_run, TEXTS, all_scores=True)
    adapter = predict(lora_run / "adapter", TEXTS, all_scores=True)
    assert load_saved_model(lora_run / "adapter").task.name == "text-classification"
    for one, other in zip(merged, adapter, strict=True):
        assert one["label"] == other["label"]
        assert one["scores"] == pytest.approx(other["scores"], abs=10 * TOL)


def _command(*argv: str):
    parser = argparse.ArgumentParser()
    predict_command.add_arguments(parser)
    return run_command(parser.parse_args(list(argv)))


def test_csv_and_jsonl_files_and_overwrite(lora_run, tmp_path):
    data = write_csv(tmp_path / "in.csv", [{"text": t} for t in TEXTS])
    _command(str(lora_run), str(data), "--output", str(tmp_path / "p.csv"), "--all_scores")
    with (tmp_path / "p.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["id", "label", "score", *(f"score_{name}" for name in TOPICS)]
    assert [row["id"] for row in table] == ["0", "1", "2"]
    _command(str(lora_run), str(data), "--output", str(tmp_path / "p.jsonl"))
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [line["label"] for line in lines] == [row["label"] for row in table]
    assert set(lines[0]) == {"id", "label", "score"}
    with pytest.raises(ConfigError, match="already exists"):
        _command(str(lora_run), str(data), "--output", str(tmp_path / "p.csv"))
    _command(str(lora_run), str(data), "--output", str(tmp_path / "p.csv"), "--overwrite")
    assert predict_command.ENTRY == "hftl.inference.predict:run_command"


def test_stdin_lines_to_stdout(built, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(TEXTS) + "\n"))
    _command(str(built["single"]), "-", "--format", "jsonl")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["id"] for line in lines] == [0, 1, 2]
    expected = torch.softmax(_logits(built["single"], TEXTS).double(), -1).max(-1).values.tolist()
    assert [line["score"] for line in lines] == pytest.approx(expected, abs=TOL)


def test_unreadable_rows_are_reported_and_kept_in_place(lora_run, tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    rows = [
        {"id": "a", "text": TEXTS[0]},
        {"id": "b", "text": "  "},
        {"id": "c", "text": None},
        {"id": "d", "text": TEXTS[1]},
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = predict(lora_run, str(data))
    assert [row["id"] for row in out] == ["a", "b", "c", "d"]
    assert [row["error"] for row in out] == ["", "empty text", "empty text", ""]
    assert out[1]["label"] == "" and out[0]["label"] in TOPICS and out[3]["label"] in TOPICS
    assert "skipped 2 row(s) with empty text (ids: b, c)" in capsys.readouterr().err


def test_multi_label_applies_the_saved_threshold_or_the_given_one(built):
    probabilities = torch.sigmoid(_logits(built["multi"], TEXTS).double()).numpy()
    for threshold, rows in (
        (0.45, predict(built["multi"], TEXTS)),
        (0.5, predict(built["multi"], TEXTS, threshold=0.5)),
    ):
        for row, row_probabilities in zip(rows, probabilities, strict=True):
            assert set(row["label"]) == {TOPICS[i] for i in np.flatnonzero(row_probabilities >= threshold)}
    assert load_saved_model(built["multi"]).threshold == 0.45


def test_regression_writes_the_heads_values(built):
    rows = predict(built["regression"], TEXTS)
    assert [row["rating"] for row in rows] == pytest.approx(
        _logits(built["regression"], TEXTS)[:, 0].tolist(), abs=10 * TOL
    )


def test_token_classification_tags_each_word(built):
    sentence = "Taylor Swift played Madison Square Garden"
    (row,) = predict(built["token"], [sentence], all_scores=True)
    tokenizer = AutoTokenizer.from_pretrained(built["token"])
    model = AutoModelForTokenClassification.from_pretrained(built["token"]).eval()
    encoded = tokenizer(sentence.split(), is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**encoded).logits[0]
    word_ids, first = encoded.word_ids(0), []
    for position, word in enumerate(word_ids):
        if word is not None and word not in [word_ids[p] for p in first]:
            first.append(position)
    names = model.config.id2label
    assert row["words"] == sentence.split()
    assert row["tags"] == [names[int(logits[p].argmax())] for p in first]
    assert len(row["scores"]) == len(row["words"])
    labels = load_saved_model(built["token"]).labels  # read back from config.json's tags
    assert (labels.scheme, labels.mode) == ("IOB2", "default")


def test_chunked_long_text_pools_the_windows(built):
    text = " ".join(TEXTS * 4)  # far past the 16 tokens the model was "trained" at
    (row,) = predict(built["chunk"], [text], all_scores=True)
    tokenizer = AutoTokenizer.from_pretrained(built["chunk"])
    model = AutoModelForSequenceClassification.from_pretrained(built["chunk"]).eval()
    windows = tokenizer([text], truncation=True, max_length=16, stride=4, return_overflowing_tokens=True,
                        padding=True, return_tensors="pt")  # fmt: skip
    windows.pop("overflow_to_sample_mapping")
    assert len(windows["input_ids"]) > 1
    with torch.no_grad():
        pooled = torch.softmax(model(**windows).logits.double().mean(0), -1)
    assert [row["scores"][name] for name in TOPICS] == pytest.approx(pooled.tolist(), abs=10 * TOL)


def test_a_folder_of_images_with_a_broken_file(built, tmp_path):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 30), (10, 10, 10)).save(folder / "b.png")
    Image.new("L", (20, 20), 250).save(folder / "sub" / "c.jpg")
    whole = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(whole, format="PNG")
    (folder / "a.png").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])  # opens, fails to load
    rows = predict(built["vit"], str(folder))
    assert [row["id"] for row in rows] == ["a.png", "b.png", "sub/c.jpg"]
    assert rows[0]["error"] == "unreadable image file" and rows[0]["label"] == ""
    assert {rows[1]["label"], rows[2]["label"]} <= {"dark", "light"}
    listed = write_csv(tmp_path / "list.csv", [{"image": "images/b.png"}, {"image": "images/sub/c.jpg"}])
    again = predict(built["vit"], str(listed))  # paths in a data file, read against its folder
    assert [row["score"] for row in again] == pytest.approx([rows[1]["score"], rows[2]["score"]], abs=TOL)


def test_bad_inputs_are_one_line_and_write_nothing(lora_run, built, tmp_path):
    good = write_csv(tmp_path / "good.csv", [{"text": t} for t in TEXTS])
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("text\n")
    (tmp_path / "sheet.xlsx").write_bytes(b"PK")
    numbers = write_csv(tmp_path / "numbers.csv", [{"a": 1, "b": 2}])
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (8, 8)).save(images / "x.png")
    (tmp_path / "no-model").mkdir()
    existing = tmp_path / "existing.csv"
    existing.write_text("mine")
    cases = [
        (tmp_path / "missing-model", good, {}, "not a directory"),
        (tmp_path / "no-model", good, {}, "holds no model"),
        (lora_run, tmp_path / "missing.csv", {}, "does not exist"),
        (lora_run, tmp_path / "empty.csv", {}, "is empty"),
        (lora_run, tmp_path / "header.csv", {}, "has no rows"),
        (lora_run, tmp_path / "sheet.xlsx", {}, "unknown format"),
        (lora_run, images, {}, "holds images, but the model reads text"),
        (lora_run, numbers, {}, "reads a text column"),
        (lora_run, good, {"text_column": "body"}, "Column 'body' not found"),
        (lora_run, good, {"threshold": 0.5}, "applies to multi-label"),
        (lora_run, good, {"output": str(tmp_path / "out.txt")}, "no .csv or .jsonl suffix"),
        (built["multi_no_threshold"], good, {}, "no saved decision threshold"),
        (built["vit"], good, {}, "reads an image column"),
    ]
    for model, data, options, words in cases:
        options = {"output": str(tmp_path / "out.csv"), **options}
        with pytest.raises(HftlError) as caught:
            predict(model, str(data), **options)
        message = str(caught.value)
        assert words in message and "\n" not in message, message
        assert not Path(options["output"]).exists()
    with pytest.raises(ConfigError, match="already exists"):
        predict(lora_run, str(good), output=str(existing))
    assert existing.read_text() == "mine"
    with pytest.raises(DataError, match="None of the 1 rows"):
        predict(lora_run, ["   "])
