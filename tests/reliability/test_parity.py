"""Multi-process parity: the text recipe under ``torchrun --nproc_per_node 2`` on CPU (gloo) reaches the
weights of one process with the same global batch, writes one output folder (chosen once for both
processes), one checkpoint set and one all_results.json, and resumes after a SIGTERM that reached one
process and stopped both at the same step. With gradient accumulation as well (SGD, no clipping), the
loss, the gradient norm and the weights of each step are those of one process with the global batch.

Tolerance: gradients are averaged across processes in another order than one process sums them, so the
weights agree to within 1e-8 here (8.4e-9 measured), not bit for bit; the test allows 1e-6. Dropout is off so both runs
draw no random masks (each process has its own random stream)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig, BertModel

from hftl import finetune
from hftl.run.checkpoints import MANIFEST, checkpoint_problem

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


# text_cls.py as each rank runs it, with HFTL_FAULT (the self-sent signal) kept on rank 1 only, and each
# rank's stop (step, stopped, the signal it got itself) written to rank-<RANK>.json at the end of training
ONE_RANK_SIGNALLED = """
import json, os, runpy, sys
from pathlib import Path
from hftl.trainer import GracefulStop

rank = os.environ["RANK"]
if rank != "1":
    os.environ.pop("HFTL_FAULT", None)
end_of_training = GracefulStop.on_train_end

def on_train_end(self, args, state, control, **kwargs):
    record = {"step": state.global_step, "stopped": self.stopped, "signal": self.signal_name}
    Path(f"rank-{rank}.json").write_text(json.dumps(record))
    return end_of_training(self, args, state, control, **kwargs)

GracefulStop.on_train_end = on_train_end
sys.argv[0] = RECIPE
runpy.run_path(RECIPE, run_name="__main__")
"""


def torchrun(
    options: dict,
    cwd: Path,
    env: dict | None = None,
    script: Path = REPO / "recipes" / "text_cls.py",
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2 script --key value ...``, ended with its workers if it runs over (a
    rank waiting on a collective the other never joins would otherwise stay behind)."""
    args = [item for key, value in options.items() for item in (f"--{key}", str(value))]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    with subprocess.Popen(
        [*command, str(script), *args],
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.terminate()  # torchrun ends its workers (each in a session of its own)
            try:
                stdout, stderr = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                stdout, stderr = process.communicate()
            raise AssertionError(f"torchrun ran over {timeout} s:\n{stderr[-3000:]}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_two_processes_match_one_and_resume_after_sigterm(setup):
    options, root = setup
    one = finetune(**options, per_device_train_batch_size=8, output_dir=str(root / "one-process"))
    expected = load_file(str(one.output_dir / "model.safetensors"))

    launch = root / "launch"  # no --output_dir: both processes must agree on the one hftl picks
    launch.mkdir()
    wrapper = root / "one_rank_signalled.py"
    wrapper.write_text(f"RECIPE = {str(REPO / 'recipes' / 'text_cls.py')!r}\n{ONE_RANK_SIGNALLED}")
    fault = {"HFTL_FAULT": "step@6", "HFTL_FAULT_SIGNAL": "TERM"}
    # a rank that trained on would wait forever for the other in a collective: 300 s (about 30 s here)
    stopped = torchrun({**options, "per_device_train_batch_size": 4}, launch, fault, script=wrapper, timeout=300)
    assert stopped.returncode != 0, stopped.stderr[-3000:]
    (output,) = (launch / "outputs").iterdir()
    assert "hftl: stopped: SIGTERM stopped training at step 6 of 12" in stopped.stderr, stopped.stderr[-3000:]
    # only rank 1 got the signal; both stopped at step 6
    ranks = [json.loads((launch / f"rank-{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks == [
        {"step": 6, "stopped": True, "signal": None},
        {"step": 6, "stopped": True, "signal": "SIGTERM"},
    ], stopped.stderr[-3000:]
    checkpoint = output / "checkpoint-6"
    assert checkpoint_problem(checkpoint) is None
    assert json.loads((checkpoint / MANIFEST).read_text())["world_size"] == 2
    assert {p.name for p in checkpoint.glob("rng_state*")} == {"rng_state_0.pth", "rng_state_1.pth"}

    resume = {**options, "per_device_train_batch_size": 4, "output_dir": output, "resume_from_checkpoint": "auto"}
    resumed = torchrun(resume, launch)
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


def test_two_processes_with_accumulation_scale_the_loss_like_one_batch(setup):
    """2 processes x 2 accumulated micro-batches of 2 rows against 1 process with batches of 8: with SGD
    and no clipping, a loss scaled wrongly (Trainer's default for models that take loss kwargs: not
    divided by the accumulation steps, multiplied by the process count) shows in every number. Sequential
    order: accelerate gives process p the micro-batches p, p+2, ..., so step s covers the rows
    [8s, 8s+8) in both runs. max_grad_norm 1e9 never clips but makes Trainer log the gradient norm."""
    options, root = setup
    options = {
        **options, "max_steps": 3, "save_steps": 3, "optim": "sgd", "learning_rate": 0.5, "max_grad_norm": 1e9,
        "train_sampling_strategy": "sequential", "lr_scheduler_type": "constant",
    }  # fmt: skip
    one = finetune(**options, per_device_train_batch_size=8, output_dir=str(root / "one-batch"))
    launch = root / "accumulated"
    launch.mkdir()
    two = torchrun(
        {**options, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 2, "output_dir": "out"},
        launch,
    )
    assert two.returncode == 0, two.stderr[-3000:]

    def per_step(log_history: list[dict]) -> list[tuple[float, float]]:
        return [(entry["loss"], entry["grad_norm"]) for entry in log_history if "loss" in entry]

    expected = per_step(one.trainer.state.log_history)
    actual = per_step(json.loads((launch / "out" / "checkpoint-3" / "trainer_state.json").read_text())["log_history"])
    assert len(expected) == len(actual) == 3 and len({loss for loss, _ in expected}) == 3  # it learns
    for (loss, norm), (loss_2, norm_2) in zip(expected, actual, strict=True):
        assert abs(loss - loss_2) < TOLERANCE and abs(norm - norm_2) < TOLERANCE, (expected, actual)
    weights = load_file(str(one.output_dir / "model.safetensors"))
    weights_2 = load_file(str(launch / "out" / "model.safetensors"))
    worst = max((weights[key] - weights_2[key]).abs().max().item() for key in weights)
    assert worst < TOLERANCE, f"largest weight difference {worst:g}"
