"""Resume equality: a run stopped after step k (by SIGTERM, which saves a checkpoint) and resumed with
``--resume_from_checkpoint auto`` ends with the same weights, bit for bit (fp32, CPU), the same logged
losses, and the same batches in the same order as a run that was never stopped."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hftl import TrainingStopped, finetune
from hftl.run.checkpoints import MANIFEST
from hftl.trainer import HftlTrainer

from ..test_image import image_folder, tiny_resnet, tiny_vit  # noqa: F401 - the fixtures

# 48 training rows (60 - 6 validation - 6 test) in batches of 4: 12 optimizer steps an epoch
RESUME_TRAINING = dict(
    num_train_epochs=2, max_steps=-1, save_strategy="steps", save_steps=50, logging_steps=1, seed=3
)
_STEP_KEYS = ("loss", "grad_norm", "learning_rate", "epoch", "step")


@pytest.fixture
def batches(monkeypatch) -> list[str]:
    """The training batches in the order Trainer fed them, as digests of their token ids."""
    seen: list[str] = []
    step = HftlTrainer.training_step

    def recording(self, model, inputs, *args, **kwargs):
        seen.append(hashlib.sha256(inputs["input_ids"].numpy().tobytes()).hexdigest()[:12])
        return step(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(HftlTrainer, "training_step", recording)
    return seen


def weights(output_dir) -> dict[str, torch.Tensor]:
    folder = Path(output_dir)
    name = "adapter/adapter_model.safetensors" if (folder / "adapter").is_dir() else "model.safetensors"
    return load_file(str(folder / name))


def step_log(trainer) -> list[dict]:
    return [
        {key: entry[key] for key in _STEP_KEYS if key in entry}
        for entry in trainer.state.log_history
        if "loss" in entry
    ]


def stop_and_resume(options: dict, stop_at: int, output_dir: Path, batches: list[str], monkeypatch):
    """Stop at ``stop_at`` with SIGTERM (in this process, as a scheduler would), then resume with auto."""
    monkeypatch.setenv("HFTL_FAULT", f"step@{stop_at}")
    monkeypatch.setenv("HFTL_FAULT_SIGNAL", "TERM")
    with pytest.raises(TrainingStopped, match=rf"SIGTERM stopped training at step {stop_at} of \d+") as stop:
        finetune(**{**options, "output_dir": str(output_dir)})
    assert "--resume_from_checkpoint auto" in str(stop.value) and stop.value.exit_status == 143
    checkpoint = output_dir / f"checkpoint-{stop_at}"
    assert (checkpoint / MANIFEST).is_file() and not (output_dir / "model.safetensors").exists()
    before = len(batches)
    monkeypatch.delenv("HFTL_FAULT")
    resumed = finetune(**{**options, "output_dir": str(output_dir), "resume_from_checkpoint": "auto"})
    return resumed, before


def assert_same_run(reference, resumed, reference_batches, batches):
    assert batches == reference_batches, "the resumed run saw other batches"
    assert step_log(resumed.trainer) == step_log(reference.trainer)
    expected, actual = weights(reference.output_dir), weights(resumed.output_dir)
    assert expected.keys() == actual.keys()
    for key, tensor in expected.items():
        assert torch.equal(tensor, actual[key]), f"{key} differs after resuming"
    assert resumed.metrics["test_loss"] == reference.metrics["test_loss"]


@pytest.mark.parametrize(
    "options, stops",
    [
        # mid-epoch in epoch 1, at the epoch boundary, and mid-epoch in epoch 2
        pytest.param({}, [17, 5, 12], id="full"),
        pytest.param({"gradient_accumulation_steps": 2}, [3, 9], id="full-gradient-accumulation"),
        pytest.param({"method": "lora"}, [7], id="lora"),
    ],
)
def test_resumed_run_equals_the_uninterrupted_one(
    options, stops, tiny_options, tmp_path, batches, monkeypatch
):
    options = {**tiny_options, **RESUME_TRAINING, **options}
    reference = finetune(**{**options, "output_dir": str(tmp_path / "reference")})
    reference_batches = list(batches)
    for stop_at in stops:
        batches.clear()
        resumed, _ = stop_and_resume(
            options, stop_at, tmp_path / f"stopped-at-{stop_at}", batches, monkeypatch
        )
        assert_same_run(reference, resumed, reference_batches, batches)


def test_resumed_distillation_equals_the_uninterrupted_one(tiny_options, tmp_path, batches, monkeypatch):
    """Online teacher, hidden-state matching on: its learned projection is resumed too."""
    teacher = finetune(**{**tiny_options, "output_dir": str(tmp_path / "teacher")}).output_dir
    options = {
        **tiny_options,
        **RESUME_TRAINING,
        "method": "distill",
        "teacher": str(teacher),
        "student_layers": 1,
        "distill_hidden_weight": 1.0,
    }
    batches.clear()
    reference = finetune(**{**options, "output_dir": str(tmp_path / "reference")})
    reference_batches = list(batches)
    batches.clear()
    resumed, _ = stop_and_resume(options, 9, tmp_path / "stopped", batches, monkeypatch)
    assert_same_run(reference, resumed, reference_batches, batches)


@pytest.fixture
def image_batches(monkeypatch) -> list[str]:
    """The training batches of an image run in the order Trainer fed them, as digests of their pixels."""
    seen: list[str] = []
    step = HftlTrainer.training_step

    def recording(self, model, inputs, *args, **kwargs):
        seen.append(hashlib.sha256(inputs["pixel_values"].numpy().tobytes()).hexdigest()[:12])
        return step(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(HftlTrainer, "training_step", recording)
    return seen


@pytest.mark.parametrize(
    ("architecture", "workers"),
    # the worker run last: its persistent workers take about 5 s each to join when collected, later
    [("resnet", 0), ("vit", 0), ("resnet", None)],
    ids=["cnn-in-process", "vit-in-process", "cnn-worker-processes"],
)
def test_resumed_image_run_without_augmentation_equals_the_uninterrupted_one(
    architecture, workers, request, image_folder, tmp_path, image_batches, monkeypatch  # noqa: F811
):
    """A CNN (BatchNorm statistics resume too) with --augment none, decoding in the training process and
    in hftl's default persistent worker processes (None: auto); and a ViT, whose checkpoint names its
    weights the old way (transformers converts them on ``from_pretrained``, while Trainer's resume loaded
    the file as is and silently kept the base weights). Random augmentation does not resume bit for bit
    (docs/reliability.md)."""
    options = {
        "task": "image-classification", "model": request.getfixturevalue(f"tiny_{architecture}"), "dataset": str(image_folder), "augment": "none",
        "dataloader_num_workers": workers, "per_device_train_batch_size": 4, "per_device_eval_batch_size": 8,
        "eval_strategy": "no", "disable_tqdm": True, **RESUME_TRAINING,
    }  # fmt: skip
    reference = finetune(**{**options, "output_dir": str(tmp_path / "reference")})
    reference_batches = list(image_batches)
    image_batches.clear()
    resumed, _ = stop_and_resume(options, 5, tmp_path / "stopped", image_batches, monkeypatch)
    assert_same_run(reference, resumed, reference_batches, image_batches)


def test_best_model_of_a_vit_run_is_the_best_checkpoint_s_weights(tiny_vit, image_folder, tmp_path):  # noqa: F811
    """``load_best_model_at_end`` loads the best checkpoint's weights into the model, converted from the
    file's key names (stock Trainer kept the last weights for every renamed tensor, with a warning)."""
    from transformers import AutoModelForImageClassification

    options = {
        "task": "image-classification", "model": tiny_vit, "dataset": str(image_folder), "augment": "none",
        "per_device_train_batch_size": 4, "per_device_eval_batch_size": 8, "max_steps": 6, "seed": 3,
        "learning_rate": 5e-3, "eval_strategy": "steps", "eval_steps": 2, "save_strategy": "steps", "save_steps": 2,
        "load_best_model_at_end": True, "metric_for_best_model": "accuracy", "greater_is_better": False,
        "disable_tqdm": True, "output_dir": str(tmp_path / "best"),
    }  # fmt: skip
    result = finetune(**options)
    best = result.trainer.state.best_model_checkpoint
    assert best and not best.endswith("checkpoint-6"), best  # the lowest accuracy: not the last step's
    expected = AutoModelForImageClassification.from_pretrained(best).state_dict()
    actual = result.trainer.model.state_dict()
    for key, tensor in expected.items():
        assert torch.equal(tensor, actual[key]), f"{key} is not the best checkpoint's"
