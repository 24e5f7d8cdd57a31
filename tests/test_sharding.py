"""Sharding and launch configs: hftl reads FSDP / DeepSpeed and the mixed precision from an accelerate
config as well as from flags, refuses sharding where Accelerate would silently drop it (CPU) and the
methods whose saving can't gather shards, accepts the checkpoints sharded runs write, and ships
accelerate / DeepSpeed configs that parse and validate. (No GPU here: the sharded runs themselves are
benchmarks/gpu_check.sh's.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hftl import ConfigError, DataArguments, HftlTrainingArguments, MethodArguments, ModelArguments, finetune
from hftl.plan import plan_run
from hftl.run.checkpoints import checkpoint_problem, newest_complete_checkpoint, write_manifest
from hftl.run.sharding import run_precision

from .conftest import TINY_TRAINING

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "recipes" / "accelerate"


@pytest.fixture
def clean_launch_env(monkeypatch):
    """No accelerate launch variables from the environment the tests run in."""
    for key in [key for key in os.environ if key.startswith("ACCELERATE_") or key.startswith("FSDP_")]:
        monkeypatch.delenv(key)
    return monkeypatch


@pytest.fixture
def bf16_gpu(clean_launch_env):
    """A machine whose (pretend) GPU supports bf16, as hftl's auto precision sees it."""
    clean_launch_env.setattr(torch.cuda, "is_available", lambda: True)
    clean_launch_env.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    return clean_launch_env


@pytest.fixture
def pretend_gpu(clean_launch_env):
    """Sharding checks that see an accelerator (the refusals past the CPU one)."""
    clean_launch_env.setattr("hftl.options.techniques.on_cpu_only", lambda args: False)
    return clean_launch_env


# --- precision ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variable", "fp16", "bf16"),
    [
        (None, False, True),  # auto: bf16 on a GPU that supports it
        ("no", False, True),  # accelerate launch exports "no" when nothing was chosen: still auto
        ("fp16", False, False),  # the config chose fp16: auto-bf16 stays off
        ("bf16", False, True),
        (None, True, False),  # --fp16
    ],
)
def test_precision_chosen_in_the_accelerate_config_wins_over_auto(bf16_gpu, variable, fp16, bf16):
    """(A pretend GPU can't build TrainingArguments, which initialises CUDA: the auto rule alone.)"""
    from hftl.options.training_args import auto_bf16

    if variable:
        bf16_gpu.setenv("ACCELERATE_MIXED_PRECISION", variable)
    assert auto_bf16(use_cpu=False, fp16=fp16) is bf16
    assert auto_bf16(use_cpu=True, fp16=fp16) is False


@pytest.mark.parametrize(
    ("variable", "precision"), [("fp16", "fp16"), ("bf16", "bf16"), ("no", "fp32"), (None, "fp32")]
)
def test_the_card_names_the_precision_the_run_trains_in(clean_launch_env, variable, precision):
    if variable:
        clean_launch_env.setenv("ACCELERATE_MIXED_PRECISION", variable)
    assert run_precision(HftlTrainingArguments(output_dir="out", use_cpu=True)) == precision


def test_bf16_from_accelerate_on_cpu_is_no_stock_error(clean_launch_env):
    """accelerate launch --mixed_precision bf16 on a CPU machine: bf16 comes from the variable (CPU autocast),
    not the flag, which stock checks refuse without --use_cpu."""
    clean_launch_env.setattr(torch.cuda, "is_available", lambda: False)
    clean_launch_env.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    args = HftlTrainingArguments(output_dir="out")
    assert args.bf16 is False and run_precision(args) == "bf16"


# --- sharding: where it can't run, what can't run under it ---------------------------------------------
@pytest.mark.parametrize(
    ("variables", "flags", "named"),
    [
        ({"ACCELERATE_USE_FSDP": "true"}, {}, "FSDP (from the accelerate config)"),
        ({"ACCELERATE_USE_DEEPSPEED": "true"}, {}, "DeepSpeed (from the accelerate config)"),
        ({}, {"fsdp": "full_shard"}, "--fsdp"),
        (
            {"ACCELERATE_USE_FSDP": "true", "ACCELERATE_USE_CPU": "true"},
            {},
            "FSDP (from the accelerate config)",
        ),
    ],
)
def test_sharding_on_cpu_is_refused_in_one_line(clean_launch_env, variables, flags, named):
    clean_launch_env.setattr(torch.cuda, "is_available", lambda: False)
    for key, value in variables.items():
        clean_launch_env.setenv(key, value)
    with pytest.raises(ConfigError) as refused:
        HftlTrainingArguments(output_dir="out", **flags)
    message = str(refused.value)
    assert message.startswith(f"{named} needs GPUs: on CPU Accelerate runs plain DDP") and "\n" not in message


def test_cpu_runs_are_told_apart_on_a_gpu_machine(clean_launch_env):
    from types import SimpleNamespace

    from hftl.run.sharding import on_cpu_only

    clean_launch_env.setattr(torch.cuda, "is_available", lambda: True)
    if hasattr(torch, "accelerator"):
        clean_launch_env.setattr(torch.accelerator, "is_available", lambda: True)
        clean_launch_env.setattr(torch.accelerator, "current_accelerator", lambda: torch.device("cuda"))
    assert on_cpu_only(SimpleNamespace(use_cpu=False)) is False
    assert on_cpu_only(SimpleNamespace(use_cpu=True)) is True  # --use_cpu
    clean_launch_env.setenv("ACCELERATE_USE_CPU", "True")  # accelerate launch --cpu
    assert on_cpu_only(SimpleNamespace(use_cpu=False)) is True
    if hasattr(torch, "accelerator"):  # Apple's MPS: an accelerator to torch, none Accelerate shards on
        clean_launch_env.delenv("ACCELERATE_USE_CPU")
        clean_launch_env.setattr(torch.accelerator, "current_accelerator", lambda: torch.device("mps"))
        assert on_cpu_only(SimpleNamespace(use_cpu=False)) is True


def test_no_sharding_no_refusal(clean_launch_env):
    clean_launch_env.setenv("ACCELERATE_USE_FSDP", "false")
    HftlTrainingArguments(output_dir="out", use_cpu=True)


@pytest.mark.parametrize(
    ("switch", "named"),
    [({"find_lr": True}, "--find_lr"), ({"unfreeze_schedule": "gradual"}, "--unfreeze_schedule")],
)
def test_guards_read_sharding_from_the_accelerate_config(pretend_gpu, switch, named):
    pretend_gpu.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(
        ConfigError, match=f"^{named} doesn't work with FSDP \\(from the accelerate config\\)"
    ):
        HftlTrainingArguments(output_dir="out", **switch)


@pytest.mark.parametrize("method", ["lora", "ia3", "distill"])
def test_methods_that_cant_save_shards_are_refused_before_any_compute(
    pretend_gpu, no_model_build, tiny_options, tiny_bert_dir, method
):
    pretend_gpu.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    extra = {"teacher": tiny_bert_dir} if method == "distill" else {}
    with pytest.raises(ConfigError) as refused:
        finetune(**tiny_options, method=method, **extra)
    message = str(refused.value)
    assert message.startswith(
        f"--method {method} doesn't run under DeepSpeed (from the accelerate config) yet"
    )
    assert "only --method full or linear-probe do" in message and "multi_gpu.yaml" in message
    assert not Path(tiny_options["output_dir"]).exists()  # nothing written


@pytest.mark.parametrize("method", ["full", "linear-probe"])
def test_full_and_probe_plan_under_sharding(pretend_gpu, tiny_bert_dir, text_csv, tmp_path, method):
    pretend_gpu.setenv("ACCELERATE_USE_FSDP", "true")
    plan = plan_run(
        ModelArguments(model=tiny_bert_dir),
        DataArguments(dataset=str(text_csv)),
        MethodArguments(method=method),
        HftlTrainingArguments(output_dir=str(tmp_path / "out"), **TINY_TRAINING),
    )
    assert plan.method.name == method and plan.method.shards


# --- checkpoints written by sharded runs ---------------------------------------------------------------
SHARDED_LAYOUTS = {
    "fsdp-full": ["model.safetensors", "optimizer.bin", "scheduler.pt"],
    "fsdp-sharded": ["pytorch_model_fsdp_0/__0_0.distcp", "optimizer_0/__0_0.distcp", "scheduler.pt"],
    "deepspeed": [  # its global_step folder holds the schedule too: no scheduler.pt
        "model.safetensors",
        "latest",
        "global_step6/mp_rank_00_model_states.pt",
        "global_step6/bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt",
    ],
}


def _checkpoint(folder: Path, files: list[str]) -> Path:
    for name in ["trainer_state.json", "rng_state.pth", *files]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode())
    write_manifest(folder, world_size=2)
    return folder


@pytest.mark.parametrize("layout", sorted(SHARDED_LAYOUTS))
def test_checkpoints_of_sharded_runs_resume(tmp_path, layout):
    older = _checkpoint(tmp_path / "checkpoint-3", ["model.safetensors", "optimizer.pt", "scheduler.pt"])
    newest = _checkpoint(tmp_path / "checkpoint-6", SHARDED_LAYOUTS[layout])
    assert checkpoint_problem(newest) is None
    assert newest_complete_checkpoint(tmp_path) == str(newest) != str(older)


@pytest.mark.parametrize(
    ("files", "missing"),
    [
        (["model.safetensors", "scheduler.pt"], "optimizer.pt"),  # no optimizer state in any form
        (["model.safetensors", "optimizer.bin"], "scheduler.pt"),  # FSDP, schedule lost
        (
            ["latest", "global_step6/mp_rank_00_model_states.pt"],
            "optimizer.pt",
        ),  # DeepSpeed without its optimizer
    ],
)
def test_checkpoints_without_resume_state_are_skipped(tmp_path, files, missing):
    folder = _checkpoint(tmp_path / "checkpoint-6", files)
    assert checkpoint_problem(folder) == (
        f"its manifest does not list {missing}, so training would restart it from scratch"
    )
    assert newest_complete_checkpoint(tmp_path) is None


# --- the shipped configs --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(path.name for path in CONFIGS.glob("*.yaml")))
def test_accelerate_configs_parse(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / name))
    assert config.mixed_precision == "no"  # hftl's auto precision; fp16/bf16 there would win
    if config.deepspeed_config:
        assert (
            ROOT / config.deepspeed_config["deepspeed_config_file"]
        ).is_file()  # relative to the repo root
    if config.fsdp_config:
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # the one-process format


@pytest.mark.parametrize("name", ["ds_zero2.json", "ds_zero3.json"])
def test_deepspeed_configs_validate_without_a_gpu(name, clean_launch_env):
    """DeepSpeed's own config parser accepts each file once Trainer has filled its "auto" values."""
    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers import BertConfig, BertForSequenceClassification
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    args = HftlTrainingArguments(
        output_dir="out",
        use_cpu=True,
        bf16=True,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
    )
    config = HfTrainerDeepSpeedConfig(str(CONFIGS / name))
    config.trainer_config_process(args)
    model = BertForSequenceClassification(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    )
    config.trainer_config_finalize(args, model, num_training_steps=100)
    assert "auto" not in str(config.config)
    parsed = DeepSpeedConfig(config.config, mpu=None)
    assert parsed.zero_optimization_stage == int(name[len("ds_zero")])
    assert parsed.train_batch_size == 16 and config.config["bf16"]["enabled"] is True


def test_accelerate_launch_with_the_fsdp_config_on_cpu_refuses_in_one_line(tmp_path, tiny_bert_dir, text_csv):
    """The effective accelerate state, end to end: the config reaches the script only as accelerate launch's
    environment variables, and the run stops at them before loading anything."""
    output = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "FSDP_"))}
    env["CUDA_VISIBLE_DEVICES"] = ""
    completed = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "fsdp.yaml"),
         "--num_processes", "1", str(ROOT / "recipes" / "text_cls.py"), "--model", tiny_bert_dir,
         "--dataset", str(text_csv), "--output_dir", str(output)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert completed.returncode != 0
    hftl_lines = [line for line in completed.stderr.splitlines() if line.startswith("hftl: error:")]
    assert hftl_lines == [
        "hftl: error: FSDP (from the accelerate config) needs GPUs: on CPU Accelerate runs plain DDP instead, a "
        "whole copy of the model in every process; for a CPU run drop it (torchrun or accelerate launch "
        "without it is DDP)."
    ]
    assert not output.exists()
