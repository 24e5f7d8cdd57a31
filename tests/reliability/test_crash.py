"""Crash safety: the text recipe is killed (SIGKILL) at a random step and at points inside a checkpoint
save, or stopped with SIGTERM/SIGINT; ``--resume_from_checkpoint auto`` then picks the newest complete
checkpoint, reaches the same final weights as a run that was never killed, and leaves no partial
checkpoint or temporary file behind.

The recipe runs in processes forked from a server that imported hftl once (see ``tests/_forked.py``), all
scenarios at once; each is resumed in this process afterwards."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hftl import finetune
from hftl.run.checkpoints import checkpoint_problem

from .._forked import run_recipe
from ..conftest import REPO, make_rows, write_csv

# 48 training rows in batches of 4, 2 epochs: 24 steps; a checkpoint every 4 steps, the newest 2 kept
OPTIONS = dict(
    num_train_epochs=2,
    per_device_train_batch_size=4,
    per_device_eval_batch_size=8,
    save_strategy="steps",
    save_steps=4,
    save_total_limit=2,
    logging_steps=1,
    eval_strategy="no",
    seed=3,
)
# a different kill step each session (it is in the test id); pytest-xdist's workers collect the same one, from
# the run id they share
RANDOM_STEP = random.Random(os.environ.get("PYTEST_XDIST_TESTRUNUID")).randrange(1, 24)


@dataclass
class Scenario:
    fault: str  # HFTL_FAULT: where the process signals itself
    signal: str  # HFTL_FAULT_SIGNAL
    resumes_from: int | None  # the checkpoint auto-resume must pick (None: from the beginning)
    partial: int | None = None  # the checkpoint the kill left incomplete, which the resume removes

    @property
    def exit_code(self) -> int:
        number = getattr(signal, f"SIG{self.signal}")
        return -number if self.signal == "KILL" else 128 + number


SCENARIOS = {
    f"kill-at-random-step-{RANDOM_STEP}": Scenario(
        f"step@{RANDOM_STEP}", "KILL", 4 * ((RANDOM_STEP - 1) // 4) or None
    ),  # the kill comes before that step's own checkpoint
    "kill-after-weights-before-optimizer": Scenario("save:after-weights@8", "KILL", 4, partial=8),
    "kill-before-manifest": Scenario("save:before-manifest@8", "KILL", 4, partial=8),
    "kill-while-manifest-is-temporary": Scenario("save:manifest@8", "KILL", 4, partial=8),
    "kill-during-rotation": Scenario("save:rotation@12", "KILL", 12, partial=4),
    "sigterm-saves-and-stops": Scenario("step@6", "TERM", 6),
    "sigint-saves-and-stops": Scenario("step@10", "INT", 10),
}


def cli_args(options: dict) -> list[str]:
    return [item for key, value in options.items() for item in (f"--{key}", str(value))]


@pytest.fixture(scope="module")
def setup(tiny_bert_dir, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("crash")
    csv = write_csv(root / "data" / "topics.csv", make_rows(60))
    return {**OPTIONS, "model": tiny_bert_dir, "dataset": str(csv)}, root


@pytest.fixture(scope="module")
def reference(setup) -> dict[str, torch.Tensor]:
    options, root = setup
    result = finetune(**options, output_dir=str(root / "reference"))
    return load_file(str(result.output_dir / "model.safetensors"))


@pytest.fixture(scope="module")
def crashed(setup) -> dict[str, tuple[int, Path, str]]:
    """Every scenario's exit code, output dir and log: the children run concurrently."""
    options, root = setup
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["hftl", "tests._forked"])
    running = {}
    for name, scenario in SCENARIOS.items():
        output = root / name
        args = cli_args({**options, "output_dir": output})
        env = {"HFTL_FAULT": scenario.fault, "HFTL_FAULT_SIGNAL": scenario.signal}
        process = context.Process(
            target=run_recipe,
            args=(str(REPO / "recipes" / "text_cls.py"), args, env, str(root / f"{name}.log")),
        )
        process.start()
        running[name] = (process, output)
    results = {}
    for name, (process, output) in running.items():
        process.join(timeout=300)
        results[name] = (process.exitcode, output, (root / f"{name}.log").read_text())
    return results


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_auto_resume_after_a_crash_reaches_the_same_weights(name, setup, reference, crashed, capfd):
    scenario = SCENARIOS[name]
    exit_code, output, log = crashed[name]
    assert exit_code == scenario.exit_code, f"the {scenario.signal} did not happen as planned:\n{log[-2000:]}"
    assert not (output / "model.safetensors").exists()
    if scenario.signal != "KILL":  # a graceful stop: one line, and a complete checkpoint of that step
        assert f"hftl: stopped: SIG{scenario.signal} stopped training at step {scenario.resumes_from}" in log
        assert checkpoint_problem(output / f"checkpoint-{scenario.resumes_from}") is None

    if scenario.partial:
        assert checkpoint_problem(output / f"checkpoint-{scenario.partial}") is not None

    options, _ = setup
    capfd.readouterr()
    resumed = finetune(**options, output_dir=str(output), resume_from_checkpoint="auto")
    said = capfd.readouterr().err
    expected = (
        f"resuming from {output}/checkpoint-{scenario.resumes_from}"
        if scenario.resumes_from
        else ("starting from the beginning")
    )
    assert expected in said, said
    if scenario.partial:
        assert f"removing checkpoint-{scenario.partial}: an interrupted save or deletion" in said

    final = load_file(str(resumed.output_dir / "model.safetensors"))
    for key, tensor in reference.items():
        assert torch.equal(tensor, final[key]), f"{key} differs from the run that was never killed"
    leftovers = [p.name for p in output.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert not leftovers, leftovers
    checkpoints = sorted(output.glob("checkpoint-*"))
    assert [c.name for c in checkpoints] == ["checkpoint-20", "checkpoint-24"]
    assert all(checkpoint_problem(c) is None for c in checkpoints)
