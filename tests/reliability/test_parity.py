"""Multi-process parity: the text recipe under ``torchrun --nproc_per_node 2`` on CPU (gloo) reaches the
weights of one process with the same global batch, writes one output folder (chosen once for both
processes), one checkpoint set and one all_results.json, and resumes after a SIGTERM that stopped both
processes at the same step.

Tolerance: gradients are averaged across processes in another order than one process sums them, so the
weights agree to within 1e-8 here (8.4e-9 measured), not bit for bit; the test allows 1e-6. Dropout is off so both runs
draw no random masks (each process has its own random stream)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig, BertModel

from hftl import finetune
from hftl.checkpoints import MANIFEST, checkpoint_problem

from ..conftest import REPO, make_rows, write_csv

# 48 training rows, global batch 8: 6 steps an epoch, 12 in all; a checkpoint every 4 steps
OPTIONS = dict(
    num_train_epochs=2,
    per_device_eval_batch_size=8,
    save_strategy="steps",
    save_steps=4,
    logging_steps=1,
    eval_strategy="no",
    seed=11,
    use_cpu=True,
)
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def setup(tiny_bert_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    BertModel(config).save_pretrained(root / "model")
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(root / "model")
    csv = write_csv(root / "data" / "topics.csv", make_rows(60))
    return {**OPTIONS, "model": str(root / "model"), "dataset": str(csv)}, root


def torchrun(options: dict, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    args = [item for key, value in options.items() for item in (f"--{key}", str(value))]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return subprocess.run(
        [*command, str(REPO / "recipes" / "text_cls.py"), "--per_device_train_batch_size", "4", *args],
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_two_processes_match_one_and_resume_after_sigterm(setup):
    options, root = setup
    one = finetune(**options, per_device_train_batch_size=8, output_dir=str(root / "one-process"))
    expected = load_file(str(one.output_dir / "model.safetensors"))

    launch = root / "launch"  # no --output_dir: both processes must agree on the one hftl picks
    launch.mkdir()
    stopped = torchrun(options, launch, {"HFTL_FAULT": "step@6", "HFTL_FAULT_SIGNAL": "TERM"})
    assert stopped.returncode != 0, stopped.stderr[-3000:]
    (output,) = (launch / "outputs").iterdir()
    assert "hftl: stopped: SIGTERM stopped training at step 6 of 12" in stopped.stderr, stopped.stderr[-3000:]
    checkpoint = output / "checkpoint-6"
    assert checkpoint_problem(checkpoint) is None
    assert json.loads((checkpoint / MANIFEST).read_text())["world_size"] == 2
    assert {p.name for p in checkpoint.glob("rng_state*")} == {"rng_state_0.pth", "rng_state_1.pth"}

    resumed = torchrun({**options, "output_dir": output, "resume_from_checkpoint": "auto"}, launch)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {checkpoint}" in resumed.stderr
    actual = load_file(str(output / "model.safetensors"))
    worst = max((expected[key] - actual[key]).abs().max().item() for key in expected)
    assert worst < TOLERANCE, f"largest weight difference {worst:g}"

    checkpoints = sorted(output.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert [p.name for p in checkpoints] == ["checkpoint-4", "checkpoint-6", "checkpoint-8", "checkpoint-12"]
    assert all(checkpoint_problem(p) is None for p in checkpoints)
    assert len(list(output.rglob("all_results.json"))) == 1
    results = json.loads((output / "all_results.json").read_text())
    assert results["train_samples"] == 48 and results["test_samples"] == 6
