"""Every registered task × every registered method, on tiny models built from configs (the cells come from
the registries; a task's tiny model and data from ``tests/_task_matrix.py``, which a task without an entry
fails). Each cell trains once and checks:

1. training moves every parameter the method trains and leaves every other one bit-equal;
2. the saved output, loaded as a user would (``task.auto_model_class.from_pretrained(output_dir)``, and
   ``PeftModel`` on the base model for an adapter), gives the trained model's logits on the same batch;
3. a second run resumed with ``--resume_from_checkpoint`` from the first run's step-1 checkpoint ends with
   the same weights, bit for bit, the same logged losses and the same test loss (fp32, CPU).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoConfig, TrainerCallback

import hftl.pipeline
from hftl import finetune
from hftl._batch import model_inputs
from hftl.methods import get_method, method_names
from hftl.tasks import get_task, task_names

from ._task_matrix import MATRIX_TRAINING, RESUME_STEP, TASK_FIXTURES
from .reliability.test_resume import step_log
from .test_image import tiny_resnet, tiny_vit  # noqa: F401 - the fixtures

# methods that leave part of the pretrained model frozen (the rest: every parameter trains)
FREEZING = {"linear-probe", "lora", "ia3"}


class Snapshot(TrainerCallback):
    """Each parameter's value and whether it trains, at the start of training; its values at the end (before
    what comes after training, e.g. regression folding its standardisation into the head, trained or not)."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {name: (p.detach().clone(), p.requires_grad) for name, p in model.named_parameters()}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.after = {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.fixture(scope="module")
def cases() -> dict:
    return {}


def _case(task: str, cases: dict, request, tmp_path_factory):
    builder = TASK_FIXTURES.get(task)
    if builder is None:
        pytest.fail(
            f"--task {task} is registered but tests/_task_matrix.py has no TASK_FIXTURES entry for it: add a "
            "builder (a tiny model and dataset of the task) so every method runs on it."
        )
    if task not in cases:
        cases[task] = builder(tmp_path_factory.mktemp(task), request)
        cases[task].teacher_dir = tmp_path_factory.mktemp(f"{task}-teacher")
    return cases[task]


def _check_training(snapshot: Snapshot, method: str) -> None:
    after = snapshot.after
    assert after.keys() == snapshot.before.keys()
    trained = [name for name, (_, grad) in snapshot.before.items() if grad]
    frozen = [name for name, (_, grad) in snapshot.before.items() if not grad]
    stale = [name for name in trained if torch.equal(snapshot.before[name][0], after[name])]
    moved = [name for name in frozen if not torch.equal(snapshot.before[name][0], after[name])]
    assert trained and not stale, f"trainable parameters that did not move: {stale[:5]}"
    assert not moved, f"frozen parameters that moved: {moved[:5]}"
    if method in FREEZING:
        assert frozen, f"{method} froze nothing"
    elif method in ("full", "distill"):
        assert not frozen, f"{method} froze {frozen[:5]}"


def _check_reload(result, task, base_model: str) -> None:
    trainer, out = result.trainer, Path(result.output_dir)
    model = trainer.accelerator.unwrap_model(trainer.model).eval().cpu()
    rows = [trainer.eval_dataset[i] for i in range(min(4, len(trainer.eval_dataset)))]
    batch = model_inputs(trainer.data_collator(rows))
    with torch.no_grad():
        expected = model(**batch).logits
        saved = task.auto_model_class.from_pretrained(out).eval()
        torch.testing.assert_close(saved(**batch).logits, expected, atol=1e-5, rtol=0)
        if (out / "adapter").is_dir():  # the adapter (head included) on its base model, through peft
            config = AutoConfig.from_pretrained(out)
            base = task.auto_model_class.from_pretrained(
                base_model, num_labels=config.num_labels, problem_type=config.problem_type
            )
            adapted = PeftModel.from_pretrained(base, out / "adapter").eval()
            torch.testing.assert_close(adapted(**batch).logits, expected, atol=1e-5, rtol=0)


def _weights(output_dir: Path) -> dict[str, torch.Tensor]:
    """Every saved tensor (the model, and the adapter where there is one), by file and name."""
    return {
        f"{path.relative_to(output_dir)}:{name}": tensor
        for path in sorted(output_dir.glob("**/*.safetensors"))
        if "checkpoint-" not in str(path.relative_to(output_dir))
        for name, tensor in load_file(str(path)).items()
    }


@pytest.mark.parametrize("method", method_names())
@pytest.mark.parametrize("task", task_names())
def test_trains_saves_reloads_and_resumes(task, method, cases, request, tmp_path_factory, tmp_path, monkeypatch):
    case = _case(task, cases, request, tmp_path_factory)
    options = {**case.options, **MATRIX_TRAINING, "method": method}
    if get_method(method).required_options:  # distillation: a teacher of the same task
        options.update(case.distill, teacher=case.teacher())
    snapshot = Snapshot()
    result = finetune(**options, output_dir=str(tmp_path / "run"), callbacks=[snapshot])

    _check_training(snapshot, method)
    _check_reload(result, get_task(task), case.options["model"])
    if method == "full" and not (case.teacher_dir / "config.json").is_file():
        case.teacher_dir = Path(result.output_dir)  # distillation's teacher: a full run of the task (time saved)

    checkpoint = tmp_path / "run" / f"checkpoint-{RESUME_STEP}"
    with monkeypatch.context() as patch:  # the first run's card and plots are the same: time saved
        patch.setattr(hftl.pipeline, "write_card_and_images", lambda *args, **kwargs: None)
        resumed = finetune(**options, output_dir=str(tmp_path / "resumed"), resume_from_checkpoint=str(checkpoint))
    assert step_log(resumed.trainer) == step_log(result.trainer)
    expected, actual = _weights(tmp_path / "run"), _weights(tmp_path / "resumed")
    assert expected and expected.keys() == actual.keys()
    differ = [key for key, tensor in expected.items() if not torch.equal(tensor, actual[key])]
    assert not differ, f"after resuming from step {RESUME_STEP}, these differ: {differ[:5]}"
    assert resumed.metrics["test_loss"] == result.metrics["test_loss"]
