"""hftl export: ONNX files of a tiny trained BERT and ViT match PyTorch, the int8 file runs, the check
table is written, a disagreeing export is refused, and bad inputs are one line."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoTokenizer,
    BertConfig,
    BertForTokenClassification,
    ViTConfig,
    ViTImageProcessor,
    ViTModel,
)

from hftl import ConfigError, DataError, ModelNotFoundError, finetune
from hftl.commands import main
from hftl.export import ExportError, export_model
from hftl.export import api as export_api
from hftl.export._files import MANIFEST
from hftl.inference.saved import load_saved_model

from .conftest import TINY_TRAINING, make_rows, tokenizer_source, write_csv

FAST = dict(latency_runs=2, min_agreement_int8=0.0)  # a 2-step model's int8 calls are coin flips
TEXTS = ["goal match team win", "software phone chip data app network device code", "vote"]


@pytest.fixture(scope="module")
def text_run(tiny_bert_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("export-text")
    csv = write_csv(root / "topics.csv", make_rows(60))
    return finetune(model=tiny_bert_dir, dataset=str(csv), output_dir=str(root / "run"), **TINY_TRAINING)


@pytest.fixture(scope="module")
def text_export(text_run):
    return export_model(text_run.output_dir, quantize="dynamic-int8", **FAST)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export-image")
    torch.manual_seed(0)
    backbone = root / "vit"
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64)  # fmt: skip
    ViTModel(config).save_pretrained(backbone)
    ViTImageProcessor(
        size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    ).save_pretrained(backbone)
    rng = np.random.default_rng(0)
    for index in range(24):
        name, colour = [("red", (220, 30, 30)), ("green", (30, 200, 40)), ("blue", (40, 50, 210))][index % 3]
        pixels = np.clip(np.array(colour) + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype("uint8")
        (root / "photos" / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / "photos" / name / f"{index}.png")
    return finetune(task="image-classification", model=str(backbone), dataset=str(root / "photos"),
                    output_dir=str(root / "run"), learning_rate=1e-2, **TINY_TRAINING)  # fmt: skip


def test_text_onnx_gives_pytorchs_logits_at_any_batch_and_length(text_run, text_export):
    folder = text_run.output_dir / "onnx"
    assert text_export.output_dir == folder
    # the folder serves on its own: tokenizer and label names come from it, not from the run
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert AutoConfig.from_pretrained(folder).id2label == {0: "politics", 1: "sport", 2: "tech"}
    saved = load_saved_model(text_run.output_dir)
    model = saved.model
    assert tokenizer.model_max_length == saved.max_length  # truncation=True truncates as the run did
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    for texts in (TEXTS[:1], TEXTS):  # batch 1 and 3, lengths differ from the traced 2 x 8
        encoded = tokenizer(texts, padding=True, return_tensors="np")
        feed = {item.name: encoded[item.name] for item in session.get_inputs()}
        with torch.no_grad():
            expected = model(**{name: torch.from_numpy(value) for name, value in feed.items()}).logits.numpy()
        np.testing.assert_allclose(session.run(["logits"], feed)[0], expected, atol=1e-4)
    assert onnx.load(folder / "model.onnx").opset_import[0].version == 18
    # the int8 file: weights quantised, and it runs
    int8 = onnx.load(folder / "model_int8.onnx")
    assert any(node.op_type == "MatMulInteger" for node in int8.graph.node)
    quantised = ort.InferenceSession(str(folder / "model_int8.onnx"), providers=["CPUExecutionProvider"])
    assert quantised.run(["logits"], feed)[0].shape == (3, 3)


def test_check_table_and_files_are_written(text_run, text_export):
    folder = text_export.output_dir
    check = json.loads((folder / "export_check.json").read_text())
    assert check["passed"] and check["refused"] == [] and check["opset"] == 18
    assert check["rows"] == 6 and check["check_data"] == "the run's test split"
    assert check["machine"]["threads"] == torch.get_num_threads()
    assert [row["name"] for row in check["results"]] == ["PyTorch fp32", "ONNX fp32", "ONNX int8"]
    for row in check["results"]:
        assert set(row) >= {"accuracy", "agreement", "max_abs_logit_diff", "latency_ms_batch1",
                            "latency_ms_batch32", "speedup_batch1", "file"}  # fmt: skip
        assert row["latency_ms_batch1"] > 0 and row["latency_ms_batch32"] > 0
    pytorch, fp32 = check["results"][:2]
    assert fp32["agreement"] == 1.0 and fp32["max_abs_logit_diff"] < 1e-4
    assert fp32["accuracy"] == pytorch["accuracy"] == text_run.metrics["test_accuracy"]
    table = (folder / "export_check.md").read_text()
    assert (
        table.startswith("# Export check: passed") and "| ONNX int8 |" in table and text_export.table in table
    )
    listed = json.loads((folder / MANIFEST).read_text())["files"]
    assert {"model.onnx", "model_int8.onnx", "config.json", "tokenizer.json", "export_check.md"} <= set(
        listed
    )
    assert sorted(path.name for path in folder.iterdir()) == sorted([*listed, MANIFEST])


def test_image_onnx_gives_pytorchs_logits(image_run, tmp_path):
    result = export_model(image_run.output_dir, output_dir=tmp_path / "vit-onnx", **FAST)
    assert (tmp_path / "vit-onnx" / "preprocessor_config.json").is_file()
    assert not (tmp_path / "vit-onnx" / "model_int8.onnx").exists()
    assert result.results[1].agreement == 1.0
    model = load_saved_model(image_run.output_dir).model
    session = ort.InferenceSession(str(result.files["ONNX fp32"]), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        pixels = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            expected = model(pixel_values=pixels).logits.numpy()
        np.testing.assert_allclose(
            session.run(["logits"], {"pixel_values": pixels.numpy()})[0], expected, atol=1e-4
        )


def _negated(source):
    """An export that gives minus the logits: every argmax moves."""
    graph = onnx.load(source)
    graph.graph.output[0].name = "raw_logits"
    for node in graph.graph.node:
        node.output[:] = ["raw_logits" if name == "logits" else name for name in node.output]
    graph.graph.node.append(onnx.helper.make_node("Neg", ["raw_logits"], ["logits"]))
    graph.graph.output.append(onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, None))
    del graph.graph.output[0]
    return graph


def test_an_export_that_disagrees_is_refused_and_removed(text_run, text_export, tmp_path, monkeypatch):
    wrong = _negated(text_export.files["ONNX fp32"])
    monkeypatch.setattr(export_api, "export_onnx", lambda model, inputs, path: onnx.save(wrong, path))
    out = tmp_path / "refused"
    with pytest.raises(ExportError, match=r"ONNX fp32 agrees with PyTorch on 0\.00% of 6 check rows, below "
                       r"--min_agreement 0\.99: model\.onnx, model_int8\.onnx removed") as error:  # fmt: skip
        export_model(text_run.output_dir, output_dir=out, quantize="dynamic-int8", latency_runs=2)
    assert "\n" not in str(error.value)
    assert not (out / "model.onnx").exists() and not (out / "model_int8.onnx").exists()
    assert (
        (out / "export_check.md")
        .read_text()
        .startswith("# Export check: REFUSED (ONNX fp32, ONNX int8 removed)")
    )
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["passed"] is False and "model.onnx" not in manifest["files"]


def _token_model(folder):
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=3, id2label={0: "O", 1: "B-x", 2: "I-x"})  # fmt: skip
    BertForTokenClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_source()).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    "case, error, message",
    [
        ("missing", ConfigError, r"No model folder '.*nowhere': pass an hftl output folder"),
        ("missing_with_output_dir", ModelNotFoundError, r"Model path '.*nowhere' is not a directory"),
        ("format", ConfigError, r"Unknown --format 'tflite'; hftl export writes: onnx\."),
        ("quantize", ConfigError, r"Unknown --quantize 'int4'; choose dynamic-int8"),
        ("agreement", ConfigError, r"--min_agreement must lie in \[0, 1\]"),
        ("onnxruntime", ConfigError, r"\(onnxruntime is not installed\): pip install 'hftl\[export\]'"),
        ("missing_hub", ModelNotFoundError, r"nobody/nothing"),
        (
            "token",
            ExportError,
            r"supports text-classification and image-classification models; .* is a "
            r"token-classification model",
        ),  # fmt: skip
        ("data", DataError, r"nothing\.csv"),
        ("foreign_file", ConfigError, r"config\.json exists and was not written by hftl export"),
    ],
)
def test_bad_inputs_are_one_line(text_run, tmp_path, monkeypatch, case, error, message):
    model, options = text_run.output_dir, {}
    out = tmp_path / "out"
    if case.startswith("missing_"):
        model = tmp_path / "nowhere" if case == "missing_with_output_dir" else "nobody/nothing"
    elif case == "missing":
        model, out = tmp_path / "nowhere", None
    elif case == "format":
        options = {"format": "tflite"}
    elif case == "quantize":
        options = {"quantize": "int4"}
    elif case == "agreement":
        options = {"min_agreement": 1.5}
    elif case == "onnxruntime":
        monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    elif case == "token":
        model = _token_model(tmp_path / "ner")
    elif case == "data":
        options = {"data": str(tmp_path / "nothing.csv")}
    elif case == "foreign_file":
        out.mkdir()
        (out / "config.json").write_text("mine")
    with pytest.raises(error, match=message) as raised:
        export_model(model, output_dir=out, **options)
    assert "\n" not in str(raised.value)
    if case == "foreign_file":
        assert sorted(path.name for path in out.iterdir()) == ["config.json"]
        assert (out / "config.json").read_text() == "mine"
    else:
        assert not (out or tmp_path / "nowhere").exists()


def test_a_model_torch_onnx_cannot_trace_is_one_line(text_run, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        try:
            raise ValueError("Could not guard on data-dependent expression")
        except ValueError as inner:
            raise RuntimeError(
                "Failed to export the model with torch.export. \x1b[96mThis is step 1/3\x1b[0m"
            ) from inner

    monkeypatch.setattr(torch.onnx, "export", fail)
    with pytest.raises(ExportError) as raised:
        export_model(text_run.output_dir, output_dir=tmp_path / "out")
    assert str(raised.value) == (
        "torch.onnx could not export BertForSequenceClassification (bert) to ONNX, so hftl export does not "
        "support it: ValueError: Could not guard on data-dependent expression"
    )
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_cli_prints_the_table_and_refuses_in_one_line(text_run, text_export, tmp_path, capsys, monkeypatch):
    exported = text_export.files["ONNX fp32"]  # the export itself is tested above: reused, to save time
    monkeypatch.setattr(
        export_api, "export_onnx", lambda model, inputs, path: shutil.copyfile(exported, path)
    )
    assert main(["export", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.strip().startswith("hftl: error: No model folder")
    assert (
        main(
            ["export", str(text_run.output_dir), "--output_dir", str(tmp_path / "cli"), "--latency_runs", "1"]
        )
        == 0
    )
    output = capsys.readouterr().out
    assert "| ONNX fp32 |" in output and "written to" in output
