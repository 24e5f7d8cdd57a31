"""Security: a Hub token (from the environment or the command line) is written nowhere and printed
nowhere; remote code, the model's or a distillation teacher's, is never run unless asked for, and never
prompted for. (A pickle payload in a checkpoint is never run:
tests/reliability/test_corrupt.py.)"""

from __future__ import annotations

import io
import json
import logging
import shutil
import sys
from pathlib import Path

import pytest

from hftl import ModelArguments, ModelNotFoundError, distill, finetune

ENV_CANARY = "hf_canaryFromTheEnvironment0123456789"
CLI_CANARY = "hf_canaryFromTheCommandLine9876543210"


def test_hub_token_is_written_to_no_file_and_no_log(tiny_options, monkeypatch, capfd, caplog):
    monkeypatch.setenv("HF_TOKEN", ENV_CANARY)
    caplog.set_level(logging.DEBUG)
    result = finetune(
        **{**tiny_options, "save_strategy": "steps", "save_steps": 1},
        push_to_hub=True,
        push_dry_run=True,
        hub_model_id="me/canary",
        hub_token=CLI_CANARY,
    )
    assert result.trainer.args.hub_token == CLI_CANARY  # kept in memory for the push itself
    files = [path for path in Path(result.output_dir).rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert {"training_args.bin", "hftl_config.yaml", "README.md", "model.safetensors"} <= names, names
    for path in files:
        data = path.read_bytes()
        for canary in (ENV_CANARY, CLI_CANARY):
            assert canary.encode() not in data, f"{path} holds the token"
    captured = capfd.readouterr()
    said = captured.out + captured.err + caplog.text
    assert ENV_CANARY not in said and CLI_CANARY not in said


def test_remote_code_is_not_run_by_default(tmp_path, tiny_options, tiny_bert_dir, no_model_build):
    assert ModelArguments().trust_remote_code is False
    canary = tmp_path / "remote-code-ran"
    model = tmp_path / "custom-model"
    shutil.copytree(tiny_bert_dir, model)  # a real tokenizer; the config asks for code of its own
    (model / "config.json").write_text(
        json.dumps(
            {
                "model_type": "hftl-canary",
                "auto_map": {"AutoConfig": "configuration_canary.CanaryConfig"},
            }
        )
    )
    (model / "configuration_canary.py").write_text(
        f"from pathlib import Path\nPath({str(canary)!r}).touch()\n"
        "from transformers import PretrainedConfig\n"
        "class CanaryConfig(PretrainedConfig):\n    model_type = 'hftl-canary'\n"
    )
    with pytest.raises(ModelNotFoundError, match="pass --trust_remote_code if you trust its code") as error:
        finetune(**{**tiny_options, "model": str(model)})
    assert "\n" not in str(error.value) and len(str(error.value)) <= 300 and not canary.exists()


# --- a teacher (--method distill) follows --trust_remote_code exactly like --model ----------------------
def custom_code_teacher(folder: Path, tokenizer_dir: str, marker: Path) -> Path:
    """A tiny 3-class BERT classifier saved by save_pretrained, whose config.json names a config and a
    model class in .py files of the folder (``auto_map``); importing them writes ``marker``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    labels = ["politics", "sport", "tech"]
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(folder)
    saved = json.loads((folder / "config.json").read_text())
    saved["model_type"] = "hftl-canary"
    saved["auto_map"] = {
        "AutoConfig": "configuration_canary.CanaryConfig",
        "AutoModelForSequenceClassification": "modeling_canary.CanaryForSequenceClassification",
    }
    (folder / "config.json").write_text(json.dumps(saved))
    (folder / "configuration_canary.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "from transformers import BertConfig\n"
        "class CanaryConfig(BertConfig):\n    model_type = 'hftl-canary'\n"
    )
    (folder / "modeling_canary.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "from transformers import BertForSequenceClassification\n"
        "from .configuration_canary import CanaryConfig\n"
        "class CanaryForSequenceClassification(BertForSequenceClassification):\n"
        "    config_class = CanaryConfig\n"
    )
    return folder


@pytest.mark.parametrize("stdin", ["y\n", ""], ids=["stdin-answers-y", "stdin-closed"])
def test_teacher_code_is_not_run_without_trust_remote_code(
    stdin, tmp_path, tiny_options, tiny_bert_dir, monkeypatch, no_model_build
):
    """transformers asks "[y/N]" on stdin when trust_remote_code is left unset: a "y" there would run the
    teacher folder's code, and a closed stdin ends in a traceback. hftl passes the flag, so neither happens."""
    marker = tmp_path / "teacher-code-ran"
    teacher = custom_code_teacher(tmp_path / "custom-teacher", tiny_bert_dir, marker)
    answers = io.StringIO(stdin)
    monkeypatch.setattr(sys, "stdin", answers)
    options = {key: value for key, value in tiny_options.items() if key != "model"}
    with pytest.raises(ModelNotFoundError, match="pass --trust_remote_code if you trust its code") as error:
        distill(teacher=str(teacher), **options)
    assert "\n" not in str(error.value) and len(str(error.value)) <= 300
    assert not marker.exists() and answers.tell() == 0  # no code ran, no question was asked
    assert not Path(options["output_dir"]).exists()


def test_teacher_code_runs_with_trust_remote_code(tmp_path, tiny_options, tiny_bert_dir):
    """With --trust_remote_code the teacher's own classes load (config, tokenizer, model), and the student
    cut from it trains."""
    marker = tmp_path / "teacher-code-ran"
    teacher = custom_code_teacher(tmp_path / "custom-teacher", tiny_bert_dir, marker)
    options = {key: value for key, value in tiny_options.items() if key != "model"}
    result = distill(
        teacher=str(teacher), student_layers=1, trust_remote_code=True, **{**options, "max_steps": 1}
    )
    assert marker.exists()
    assert type(result.trainer.teacher).__name__ == "CanaryForSequenceClassification"
    assert type(result.trainer.model).__name__ == "CanaryForSequenceClassification"
    assert "teacher_test_accuracy" in result.metrics


@pytest.mark.parametrize("trust", [False, True])
def test_image_teacher_processor_follows_trust_remote_code(trust, tmp_path, monkeypatch, no_model_build):
    """The teacher's image processor (read for its mean, std and size) loads with the flag as given."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    colours = {"blue": (40, 50, 210), "green": (30, 200, 40), "red": (220, 30, 30)}
    teacher = tmp_path / "teacher"
    ViTForImageClassification(
        ViTConfig(
            image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, id2label=dict(enumerate(colours)), label2id={n: i for i, n in enumerate(colours)},
        )
    ).save_pretrained(teacher)  # fmt: skip
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(teacher)
    for index in range(18):
        name = list(colours)[index % 3]
        (tmp_path / "photos" / name).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), colours[name]).save(tmp_path / "photos" / name / f"{index}.png")
    flags = []
    load = AutoImageProcessor.from_pretrained.__func__

    def record(cls, path, *args, **kwargs):
        flags.append((str(path), kwargs.get("trust_remote_code")))
        return load(cls, path, *args, **kwargs)

    monkeypatch.setattr(AutoImageProcessor, "from_pretrained", classmethod(record))
    with pytest.raises(AssertionError, match="a model was built"):
        distill(
            teacher=str(teacher), task="image-classification", dataset=str(tmp_path / "photos"),
            output_dir=str(tmp_path / "out"), trust_remote_code=trust,
        )  # fmt: skip
    assert flags and all(flag is trust for _, flag in flags), flags
    assert str(teacher) in {path for path, _ in flags}
