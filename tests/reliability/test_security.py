"""Security: a Hub token (from the environment or the command line) is written nowhere and printed
nowhere; remote code is never run unless asked for. (A pickle payload in a checkpoint is never run:
tests/reliability/test_corrupt.py.)"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from hftl import ModelArguments, ModelNotFoundError, finetune

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
    with pytest.raises(ModelNotFoundError, match="Pass --trust_remote_code if you trust its code") as error:
        finetune(**{**tiny_options, "model": str(model)})
    assert "\n" not in str(error.value) and not canary.exists()
