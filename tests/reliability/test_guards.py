"""Reliability guards: a resume that would continue a different run, and a non-finite training loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from hftl import ConfigError, finetune
from hftl._resume import RUN_FILE, check_same_run
from hftl.trainer import NonFiniteLossError

from ..conftest import make_rows, write_csv


def test_resume_refuses_a_changed_method_or_label_set(tiny_options, tmp_path, no_model_build_after_first):
    finetune(**{**tiny_options, "save_strategy": "steps", "save_steps": 1})
    output = Path(tiny_options["output_dir"])
    assert (output / "checkpoint-2").is_dir() and json.loads((output / RUN_FILE).read_text())[
        "method"
    ] == "full"
    no_model_build_after_first()
    with pytest.raises(ConfigError, match=r"would continue a different run \(method full -> lora\)") as error:
        finetune(**{**tiny_options, "method": "lora", "resume_from_checkpoint": "auto"})
    assert "\n" not in str(error.value) and "--allow_changed_resume" in str(error.value)
    rows = [{**row, "label": row["label"].replace("tech", "science")} for row in make_rows(60)]
    other = write_csv(tmp_path / "other" / "topics.csv", rows)
    with pytest.raises(ConfigError, match=r"labels politics, sport, tech -> politics, science, sport"):
        finetune(**{**tiny_options, "dataset": str(other), "resume_from_checkpoint": "auto"})


def test_allow_changed_resume_skips_the_check(tmp_path):
    (tmp_path / RUN_FILE).write_text(json.dumps({"method": "full"}))
    check_same_run(tmp_path, {"method": "lora"}, allow_changed=True)
    with pytest.raises(ConfigError):
        check_same_run(tmp_path, {"method": "lora"}, allow_changed=False)


def test_non_finite_loss_stops_within_one_step_and_saves_nothing(tiny_options):
    class Poison(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == 1:
                with torch.no_grad():
                    model.classifier.weight.fill_(float("nan"))

    with pytest.raises(
        NonFiniteLossError, match=r"The training loss became nan at step 2 .*nothing was saved"
    ) as error:
        finetune(
            callbacks=[Poison()],
            **{**tiny_options, "max_steps": 4, "save_strategy": "steps", "save_steps": 2},
        )
    assert "\n" not in str(error.value)
    output = Path(tiny_options["output_dir"])
    assert not (output / "model.safetensors").exists() and not (output / "checkpoint-2").exists()


def test_same_seed_reproduces_weights_and_metrics_and_another_seed_changes_the_head(tiny_options, tmp_path):
    """Twice in one process (where the global RNG has moved on): the seed is applied before the head is built."""
    from safetensors.torch import load_file

    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        result = finetune(**{**tiny_options, "output_dir": str(tmp_path / name), "seed": seed})
        runs[name] = (load_file(str(result.output_dir / "model.safetensors")), result.metrics["test_loss"])
    (first, first_loss), (second, second_loss), (third, _) = runs["a"], runs["b"], runs["c"]
    assert first_loss == second_loss
    for key, tensor in first.items():
        assert torch.equal(tensor, second[key]), key
    assert not torch.equal(first["classifier.weight"], third["classifier.weight"])


@pytest.mark.parametrize(
    "changed, value",
    [
        ("model", "other/model"),
        ("task", "image-classification"),
        ("method", "lora"),
        ("labels", ["politics", "science", "sport"]),
        ("train_rows", 47),
        ("train_data_sha256", "0123456789abcdef"),  # same size, other rows: another dataset
    ],
)
def test_each_part_of_the_run_identity_is_checked_on_resume(tmp_path, changed, value):
    from datasets import Dataset

    from hftl._resume import record_run, run_identity

    train = Dataset.from_dict({"text": [f"text {i}" for i in range(48)], "labels": [0, 1, 2] * 16})
    identity = run_identity("tiny/model", "text-classification", "full", ["politics", "sport", "tech"], train)
    edited = train.map(lambda row, i: {"text": row["text"] + "!" * (i == 5)}, with_indices=True)
    relabelled = train.map(lambda row, i: {"labels": (row["labels"] + (i == 5)) % 3}, with_indices=True)
    for other in (edited, relabelled):  # one text or one label changed: another fingerprint
        assert (
            run_identity("tiny/model", "text-classification", "full", ["a"], other)["train_data_sha256"]
            != (identity["train_data_sha256"])
        )
    record_run(tmp_path, identity)
    with pytest.raises(ConfigError, match=rf"would continue a different run \({changed} ") as error:
        check_same_run(tmp_path, {**identity, changed: value}, allow_changed=False)
    assert "\n" not in str(error.value)
    check_same_run(tmp_path, identity, allow_changed=False)


def test_non_finite_weights_are_never_saved(tiny_options):
    """A weight poisoned after the last step (so no later loss shows it) is caught at the save."""

    class PoisonLast(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == state.max_steps:
                with torch.no_grad():
                    model.classifier.bias[0] = float("inf")

    with pytest.raises(
        NonFiniteLossError, match=r"classifier.bias holds NaN or infinite values at step 2"
    ) as error:
        finetune(callbacks=[PoisonLast()], **{**tiny_options, "save_strategy": "steps", "save_steps": 1})
    assert "\n" not in str(error.value)
    output = Path(tiny_options["output_dir"])
    assert (output / "checkpoint-1").is_dir() and not (output / "checkpoint-2").exists()
    assert not (output / "model.safetensors").exists()
