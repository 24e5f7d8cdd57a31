"""What a run reports comes from its task and method: the result table's rows, the report's log line, the
distilled card's teacher section, distillation's compared metric; and methods reach a task only through
the Task interface (no concrete task module imported)."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import ViTImageProcessor

import hftl
import hftl.methods.distill.method as distill_method
from hftl import finetune
from hftl.data.labels import LabelSpace
from hftl.hub.card import CardFacts, build_model_card
from hftl.methods import get_method, method_names
from hftl.methods.distill import Distillation
from hftl.pipeline import FinetuneResult
from hftl.tasks import get_task
from hftl.tasks.image_classification import settings_from_processor

from .test_tasks import TextScore

# FinetuneResult.table()'s rows before tasks and methods gave them (issue 16): they must not change
TODAY = ("test_accuracy", "test_micro_f1", "test_macro_f1", "test_mAP", "test_subset_accuracy", "threshold",
         "teacher_test_accuracy", "teacher_test_micro_f1", "retention", "latency_speedup", "test_loss",
         "test_samples", "train_samples", "train_runtime")  # fmt: skip
LABEL_KINDS = {"single-label": LabelSpace(["a", "b"]), "multi-label": LabelSpace(["a", "b"], multi_label=True)}


def _run_metrics(task, labels, method) -> dict:
    """The all_results.json keys a run of ``task`` with ``method`` has (values are made up)."""
    names = [name for name in task.metric_names(labels) if name != "loss"]
    metrics = {f"{split}_{name}": 0.5 for split in ("eval", "test") for name in names}
    metrics.update(test_loss=0.7, test_samples=8, train_samples=32, train_runtime=1.5, test_runtime=0.1)
    metrics.update(trainable_params=1000, trainable_fraction=0.25)
    if labels.multi_label:
        metrics["threshold"] = 0.4
    if isinstance(method, Distillation):
        metrics.update({f"teacher_test_{name}": 0.6 for name in names})
        metrics.update(retention=0.9, student_params=10, teacher_params=20, latency_speedup=1.8)
    return metrics


def _row_names(table: str) -> list[str]:
    return [line.split()[0] for line in table.splitlines()]


@pytest.mark.parametrize("task_name", ["text-classification", "image-classification"])
@pytest.mark.parametrize("kind", LABEL_KINDS)
@pytest.mark.parametrize("method_name", method_names())
def test_classification_tables_keep_today_s_rows_for_every_method(task_name, kind, method_name):
    task, labels, method = get_task(task_name), LABEL_KINDS[kind], get_method(method_name)()
    metrics = _run_metrics(task, labels, method)
    keys = (*task.result_keys(labels), *method.result_keys(task, labels))
    table = FinetuneResult(metrics, Path("."), None, labels, result_keys=keys).table()
    assert _row_names(table) == [key for key in TODAY if key in metrics] + ["trainable_params"]


def test_a_table_without_result_keys_shows_the_test_scores():
    metrics = {"test_mse": 0.25, "test_loss": 0.5, "test_runtime": 0.1, "test_samples_per_second": 9.0}
    metrics.update(test_samples=4, train_samples=8, train_runtime=1.0, trainable_params=10, trainable_fraction=1.0)
    table = FinetuneResult(metrics, Path("."), None, LabelSpace(["score"])).table()
    assert _row_names(table) == ["test_mse", "test_loss", "test_samples", "train_samples", "train_runtime",
                                 "trainable_params"]  # fmt: skip


def test_a_classification_run_logs_the_per_class_report_and_tables_its_own_rows(tiny_options, capfd):
    result = finetune(**tiny_options)
    assert "per-class report on the test split:\n" in capfd.readouterr().err
    assert result.result_keys == tuple(get_task("text-classification").result_keys(result.labels))
    assert _row_names(result.table()) == [
        "test_accuracy", "test_macro_f1", "test_loss", "test_samples", "train_samples", "train_runtime",
        "trainable_params",
    ]  # fmt: skip


# --- the distilled card's teacher section --------------------------------------------------------------
def _card(metrics, task, labels, method) -> str:
    facts = CardFacts(
        title="me/student", pipeline_tag="text-classification", method=method.name, method_summary="s",
        metrics=metrics, hyperparameters={"seed": 42}, usage="u", metric_order=task.card_metric_order,
        teacher="teacher" if isinstance(method, Distillation) else None, plots=[("c.png", "cap")],
        sections=method.card_sections(metrics, task, labels),
    )  # fmt: skip
    return str(build_model_card(facts))


def test_the_distilled_card_s_teacher_section_is_byte_for_byte_today_s():
    task, labels = get_task("text-classification"), LABEL_KINDS["single-label"]
    metrics = {"eval_accuracy": 0.5, "test_accuracy": 0.75, "test_macro_f1": 0.5, "eval_loss": 1.0, "test_loss": 0.9,
               "teacher_test_accuracy": 0.825, "teacher_test_macro_f1": 0.55, "teacher_test_loss": 0.1,
               "student_params": 123456, "teacher_params": 1234567, "latency_speedup": 1.87}  # fmt: skip
    card = _card(metrics, task, labels, Distillation())
    assert (
        "| loss | 1.0000 | 0.9000 |\n\n\n### Teacher and student (same test split)\n\n"
        "| | teacher | student (this model) |\n|---|---|---|\n"
        "| test accuracy | 0.8250 | 0.7500 |\n| test macro_f1 | 0.5500 | 0.5000 |\n"
        "| parameters | 1,234,567 | 123,456 |\n| inference speed (same batch) | 1.00x | 1.87x |\n\n\n![cap](c.png)"
    ) in card
    multi = {f"{prefix}test_{name}": 0.5 for prefix in ("", "teacher_") for name in task.metric_names(LABEL_KINDS["multi-label"])}
    (section,) = Distillation().card_sections(multi, task, LABEL_KINDS["multi-label"])
    assert "|---|---|---|\n| test macro_f1 | 0.5000 | 0.5000 |\n| test micro_f1 | 0.5000 | 0.5000 |\n| param" in section
    plain = _card(metrics, task, labels, get_method("full")())
    assert "| loss | 1.0000 | 0.9000 |\n\n\n![cap](c.png)" in plain and "Teacher" not in plain


def test_the_teacher_section_compares_the_task_s_metrics():
    metrics = {"test_mse": 0.25, "teacher_test_mse": 0.5, "teacher_params": 20, "student_params": 10}
    (section,) = Distillation().card_sections(metrics, TextScore(), LabelSpace(["score"]))
    assert "| test mse | 0.5000 | 0.2500 |" in section and "accuracy" not in section


def test_distillation_compares_the_task_s_headline_metric(monkeypatch):
    """extra_metrics' retention and log line use the task's headline metric (here a toy task's ``mse``)."""
    monkeypatch.setattr(distill_method, "teacher_logits", lambda *args: np.zeros((2, 1), dtype=np.float32))
    monkeypatch.setattr(distill_method, "teacher_inputs", lambda *args: {})
    monkeypatch.setattr(distill_method, "model_inputs", lambda *args: {})
    monkeypatch.setattr(distill_method, "inference_latency", lambda model, inputs: 1.0)
    method = Distillation()
    method.teacher, method.pixel_map, method.task = torch.nn.Linear(2, 1), None, TextScore()
    args = SimpleNamespace(bf16=False, device=torch.device("cpu"), per_device_eval_batch_size=2)
    student = torch.nn.Linear(2, 2)
    trainer = SimpleNamespace(
        args=args, model=student, accelerator=SimpleNamespace(unwrap_model=lambda model: model),
        data_collator=lambda rows: {"labels": [row["labels"] for row in rows]},
    )  # fmt: skip
    report = method.extra_metrics(
        trainer, {"test": Dataset.from_dict({"labels": [0.5, 1.0]})}, SimpleNamespace(labels=LabelSpace(["score"])),
        lambda prediction: {"mse": 0.5}, lambda logits, labels: logits, {"test_mse": 0.25},
    )  # fmt: skip
    assert report["teacher_test_mse"] == 0.5 and report["retention"] == 0.5


# --- methods talk to tasks through the Task interface --------------------------------------------------
def _imported_modules(path: Path, package: str) -> set[str]:
    """Every module ``path`` imports, anywhere in it (function bodies too), as an absolute name."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.update([module, *(f"{module}.{alias.name}" for alias in node.names)])
    return names


def test_methods_import_no_concrete_task_module():
    root = Path(hftl.__file__).parent
    for path in sorted((root / "methods").rglob("*.py")):
        package = ".".join(path.relative_to(root.parent).parent.parts)
        concrete = sorted(name for name in _imported_modules(path, package) if name.startswith("hftl.tasks."))
        assert not concrete, f"{path.relative_to(root.parent)} imports {concrete}: use a Task hook instead"


def test_image_tasks_give_their_processor_s_settings():
    processor = ViTImageProcessor(size={"height": 96, "width": 96}, image_mean=[0.1] * 3, image_std=[0.2] * 3)
    settings = get_task("image-classification").image_settings(processor)
    assert settings == settings_from_processor(processor) and settings.size == 96 and settings.mean == (0.1,) * 3
    with pytest.raises(NotImplementedError, match="reads no images"):
        get_task("text-classification").image_settings(processor)
