"""What a saved model folder holds: where its weights are (a full model, or only a LoRA/IA3 adapter), the
run's own config, which task it was trained for and its label space."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import yaml
from transformers import PretrainedConfig

from ..errors import ModelNotFoundError
from ..options.config import DataArguments
from ..run.run_files import CONFIG_FILE, RESULTS_FILE
from ..tasks import Task, get_task, task_names
from ..tasks._long_text import CONFIG_KEY as LONG_TEXT_KEY

__all__ = [
    "ADAPTER_DIR",
    "adapter_folder",
    "has_weights",
    "read_run_config",
    "read_results",
    "infer_task",
    "label_space",
    "data_arguments",
]

ADAPTER_DIR = "adapter"
_WEIGHT_FILES = ("*.safetensors", "*.bin")
_LABEL_NAMES = "label_names.json"  # written beside an adapter by hftl (the base config lacks the classes)


def has_weights(folder: Path) -> bool:
    """A folder ``from_pretrained`` can load a full model from: config.json and a weights file."""
    return (folder / "config.json").is_file() and any(
        path.name != "adapter_model.safetensors" for pattern in _WEIGHT_FILES for path in folder.glob(pattern)
    )


def adapter_folder(folder: Path) -> Path | None:
    """The peft adapter of ``folder`` (the folder itself, or its ``adapter/``), or None."""
    for candidate in (folder, folder / ADAPTER_DIR):
        if (candidate / "adapter_config.json").is_file() and not candidate.is_symlink():
            return candidate
    return None


def read_run_config(folder: Path) -> dict | None:
    """The run's ``hftl_config.yaml`` (in the folder, or beside an ``adapter/`` folder), or None."""
    for candidate in (folder, folder.parent if folder.name == ADAPTER_DIR else None):
        path = candidate / CONFIG_FILE if candidate is not None else None
        if path is not None and path.is_file() and not path.is_symlink():
            try:
                values = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                return None
            return values if isinstance(values, dict) else None
    return None


def read_results(folder: Path) -> dict:
    """The run's ``all_results.json`` (empty when there is none)."""
    for candidate in (folder, folder.parent if folder.name == ADAPTER_DIR else None):
        path = candidate / RESULTS_FILE if candidate is not None else None
        if path is not None and path.is_file() and not path.is_symlink():
            try:
                values = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            return values if isinstance(values, dict) else {}
    return {}


def _is_image_model(config: PretrainedConfig, folder: Path | None) -> bool:
    kinds = getattr(config, "architectures", None) or []
    if any("ImageClassification" in kind or kind.startswith("TimmWrapper") for kind in kinds):
        return True
    if getattr(config, "model_type", "") == "timm_wrapper":
        return True
    if folder is None:
        return False
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
    return (folder / "preprocessor_config.json").is_file() and not any(
        (folder / name).is_file() for name in tokenizer_files
    )


def infer_task(run_config: dict | None, config: PretrainedConfig, folder: Path | None) -> Task:
    """The run's task (``hftl_config.yaml``), else what config.json says: token-classification
    architectures, regression's problem type, image or text by the architecture and processor files."""
    name = (run_config or {}).get("task")
    if name:
        if name not in task_names():
            raise ModelNotFoundError(
                f"The model was trained for task '{name}', which this hftl doesn't know (tasks: "
                f"{', '.join(task_names())}); use the hftl version that trained it."
            )
        return get_task(name)
    kinds = getattr(config, "architectures", None) or []
    if any(kind.endswith("ForTokenClassification") for kind in kinds):
        return get_task("token-classification")
    image = _is_image_model(config, folder)
    if getattr(config, "problem_type", None) == "regression":
        return get_task("image-regression" if image else "text-regression")
    if kinds and not any(
        kind.endswith(("ForSequenceClassification", "ForImageClassification")) for kind in kinds
    ):
        if not any(kind.startswith("TimmWrapper") for kind in kinds):
            raise ModelNotFoundError(
                f"The model is a {kinds[0]}, not a classifier hftl can predict with (sequence, image or token "
                "classification, or regression); pass a fine-tuned classifier."
            )
    return get_task("image-classification" if image else "text-classification")


def _names(config: PretrainedConfig) -> list[str]:
    id2label = config.id2label or {}
    return [str(id2label[index]) for index in sorted(id2label, key=int)]


def label_space(
    task: Task, config: PretrainedConfig, run_config: dict | None, names: list[str] | None = None
):
    """The model's label space from its config, as its task reads it (``names`` overrides the config's
    class names, for an adapter whose base config doesn't know them)."""
    return task.labels_from_config(config, names or _names(config), run_config)


def data_arguments(run_config: dict | None, config: PretrainedConfig) -> DataArguments:
    """The run's data options (``hftl_config.yaml``); without one, the long-text settings and length
    config.json records (``hftl_long_text``), other options at their defaults."""
    fields = {spec.name for spec in dataclasses.fields(DataArguments) if spec.init}
    values = {key: value for key, value in (run_config or {}).items() if key in fields}
    recorded = getattr(config, LONG_TEXT_KEY, None)
    if not run_config and isinstance(recorded, dict):
        values["long_text"] = recorded.get("strategy", "truncate")
        values["max_length"] = recorded.get("max_length")
        if values["long_text"] == "chunk":
            values.update(
                chunk_stride=recorded.get("stride"),
                max_chunks=recorded.get("max_chunks"),
                chunk_aggregation=recorded.get("aggregation", "mean"),
            )
    return DataArguments(**values)
