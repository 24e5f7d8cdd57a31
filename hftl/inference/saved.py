"""A saved model, loaded for prediction and evaluation exactly as its run evaluated it: the model, its
processor, its task and label space, the multi-label threshold it tuned, and the run's input settings
(length, long-text strategy, image size) through the task's own preprocessing and collator."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, DatasetDict
from huggingface_hub import snapshot_download
from peft import PeftModel
from transformers import AutoConfig, PreTrainedModel
from transformers.utils import logging as hf_logging

from .._log import log
from ..data import LabelSpace, prepare_data
from ..errors import DataError, HftlError, ModelNotFoundError, first_line
from ..options.config import DataArguments, ModelArguments
from ..resolve import resolve_model
from ..tasks import RegressionTask, Task
from ._data import labelled_split
from ._folders import (
    ADAPTER_DIR,
    adapter_folder,
    data_arguments,
    has_weights,
    infer_task,
    label_space,
    read_results,
    read_run_config,
)

__all__ = ["SavedModel", "load_saved_model"]

_LABEL_NAMES = "label_names.json"


@dataclass
class SavedModel:
    """A fine-tuned model as its run left it, ready to predict and evaluate.

    Args:
        path: The folder the model was read from (an hftl output folder, a merged or adapter folder, or the
            local copy of a Hub model).
        model: The model in eval mode (a LoRA/IA3 adapter merged into its base).
        processor: Its tokenizer or image processor.
        task: The hftl task it was trained for (``hftl_config.yaml``'s ``task``, else inferred from config.json).
        labels: Its label space (class names in id order, multi-label or not; regression targets; tags).
        threshold: The multi-label decision threshold the run tuned (None: not multi-label, or none saved).
        max_length: The input length in tokens the run used (None for images).
        data_args: The run's data options (``hftl_config.yaml``; without one, the long-text settings
            config.json records): what preprocessing reads (length, ``long_text``, image size, columns).
        run_config: The run's ``hftl_config.yaml`` as a mapping, or None.
        results: The run's ``all_results.json`` (empty when there is none).

    Example:
        >>> saved = load_saved_model("outputs/minilm-bbc")
        >>> saved.task.name, saved.labels.names[:2], saved.long_text
        ('text-classification', ['business', 'entertainment'], 'truncate')
    """

    path: Path
    model: PreTrainedModel
    processor: Any
    task: Task
    labels: LabelSpace
    threshold: float | None
    max_length: int | None
    data_args: DataArguments
    run_config: dict | None = None
    results: dict = field(default_factory=dict)

    @property
    def long_text(self) -> str:
        """The run's ``--long_text`` strategy: ``truncate``, ``head_tail`` or ``chunk``."""
        return self.data_args.long_text

    def input_columns(self, rows: Dataset, label_column: str | None = "labels") -> list[str]:
        """The columns of ``rows`` the model reads: the run's ``--text_column``/``--image_column`` when
        ``rows`` has them, else inferred by the task as training infers them (a DataError when none fits)."""
        data_args = self.data_args
        given = [
            *(data_args.text_columns or []),
            *([data_args.image_column] if data_args.image_column else []),
        ]
        if given and not all(column in rows.column_names for column in given):
            data_args = replace(data_args, text_column=None, image_column=None)  # other data, other names
        return self.task.find_inputs(rows, label_column or "", data_args)

    def rows_to_inputs(self, rows: Dataset, input_columns: list[str] | None = None) -> Dataset:
        """Model inputs from raw ``rows`` through the task's own preprocessing, as training evaluated them
        (the same truncation, long-text windows and image transforms). ``rows`` keeps a ``labels`` column
        encoded in this model's label space when it has one (token classification needs it)."""
        columns = input_columns or self.input_columns(rows)
        prepared = self.task.preprocess(
            DatasetDict({"test": rows}), self.processor, columns, self.max_length, self.data_args
        )
        return prepared["test"]

    def collator(self):
        """The task's collator (dynamic padding; a long document's windows into one batch)."""
        return self.task.collator(self.processor, pad_to_multiple_of=None)

    def run_test_split(
        self,
        data: str | None = None,
        split: str = "test",
        *,
        text_column: str | None = None,
        label_column: str | None = None,
    ) -> Dataset:
        """Labelled rows (input columns and ``labels`` in this model's label space).

        Args:
            data: None: the run's own test split, carved again from ``hftl_config.yaml`` exactly as the run
                carved it. Else a file, folder, built-in dataset or Hub id: its ``split`` (a single file is
                all one split), labels encoded in this model's label space.
            split: The split of ``data`` to read.
            text_column: ``data``'s text column(s) (comma-separated for a pair), when not the run's.
            label_column: ``data``'s label column, when not inferred.

        Raises:
            DataError: No run config (and no ``data``), a missing split or column, or labels the model
                doesn't know (one line).

        Example:
            >>> rows = load_saved_model("outputs/minilm-bbc").run_test_split()
        """
        if data is None:
            if not self.run_config or not self.run_config.get("dataset"):
                raise DataError(
                    f"{self.path} has no {'hftl_config.yaml' if not self.run_config else 'dataset in hftl_config.yaml'} "
                    "to re-create the run's test split from; pass the labelled data to evaluate on."
                )
            prepared = prepare_data(self.data_args, self.task, label_order=list(self.labels.names))
            if split not in prepared.splits:
                raise DataError(f"The run has no split '{split}'; its splits are train, validation and test.")
            return prepared.splits[split]
        return labelled_split(self, data, split, text_column=text_column, label_column=label_column)


def _local_folder(source: str | Path, revision: str | None) -> Path:
    """The local folder holding ``source``: a directory as given, or a Hub model found offline first
    (the HF cache, an installed copy) and downloaded only when the Hub is reachable."""
    path = Path(source).expanduser()
    if path.is_dir():
        if has_weights(path) or adapter_folder(path) is not None:
            return path.resolve()
        raise ModelNotFoundError(
            f"Model folder '{source}' holds no model (no config.json with weights, no {ADAPTER_DIR}/ adapter); "
            "pass an hftl output folder or a folder written by save_pretrained()."
        )
    resolved = resolve_model(str(source), revision)  # one line for a missing path or an unknown Hub id
    if Path(resolved.path).is_dir():
        return Path(resolved.path)
    try:
        return Path(snapshot_download(str(source), revision=revision))
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise ModelNotFoundError(
            f"Model '{source}' could not be downloaded: {first_line(exc)[:200]}."
        ) from None


def _load_error(source, exc: Exception, trust_remote_code: bool) -> ModelNotFoundError:
    if not trust_remote_code and "trust_remote_code" in str(exc):
        return ModelNotFoundError(
            f"Model '{source}' needs code of its own to load (its auto_map), which hftl runs only when asked: "
            "pass --trust_remote_code if you trust its code."
        )
    return ModelNotFoundError(f"Could not load the model in '{source}': {first_line(exc)[:200]}.")


def _full_model(folder: Path, run_config, model_args: ModelArguments):
    config = AutoConfig.from_pretrained(folder, trust_remote_code=model_args.trust_remote_code)
    task = infer_task(run_config, config, folder)
    processor = task.load_processor(str(folder), model_args)
    model = task.auto_model_class.from_pretrained(
        folder, trust_remote_code=model_args.trust_remote_code, dtype=torch.float32
    )
    return model, processor, task, label_space(task, model.config, run_config)


def _adapter_model(adapter: Path, run_config, results: dict, model_args: ModelArguments):
    """The base model with the adapter merged in (peft), its head sized and named from the adapter's
    ``label_names.json``."""
    settings = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    base = settings.get("base_model_name_or_path") or (run_config or {}).get("model")
    if not base:
        raise ModelNotFoundError(f"The adapter in {adapter} names no base model; load it with peft yourself.")
    resolved = resolve_model(str(base), model_args.revision)
    base_config = AutoConfig.from_pretrained(resolved.path, trust_remote_code=model_args.trust_remote_code)
    if not run_config and settings.get("task_type") == "TOKEN_CLS":
        base_config.architectures = ["ForTokenClassification"]  # what infer_task reads
    task = infer_task(run_config, base_config, adapter)
    names_file = adapter / _LABEL_NAMES
    if not names_file.is_file():
        raise ModelNotFoundError(
            f"The adapter in {adapter} has no {_LABEL_NAMES} naming its classes; load it with peft yourself."
        )
    names = [str(name) for name in json.loads(names_file.read_text(encoding="utf-8"))]
    labels = label_space(task, base_config, run_config, names)
    if not isinstance(task, RegressionTask) and "threshold" in results:
        labels = LabelSpace(list(labels.names), multi_label=True)
    config = task.load_config(resolved.path, labels, model_args)
    processor = task.load_processor(str(adapter), model_args)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the head the adapter replaces is reported as "newly initialised"
    try:
        model = task.auto_model_class.from_pretrained(
            resolved.path, config=config, ignore_mismatched_sizes=True, dtype=torch.float32,
            trust_remote_code=model_args.trust_remote_code,
        )  # fmt: skip
    finally:
        hf_logging.set_verbosity(verbosity)
    model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    if getattr(model.config, "regression_targets", None):
        model.config.regression_targets["folded_into_head"] = True  # the adapter's head gives original units
    return model, processor, task, labels


def load_saved_model(
    source: str | Path, *, trust_remote_code: bool = False, revision: str | None = None
) -> SavedModel:
    """Load a fine-tuned model for prediction or evaluation.

    Args:
        source: An hftl output folder, a merged or adapter folder (``adapter/`` only: the base model with
            the adapter merged in, through peft), or a Hub id (found offline first, as training does).
        trust_remote_code: Run code shipped with the model's repository (off unless you trust it).
        revision: Hub revision of a Hub id.

    Raises:
        ModelNotFoundError: Nothing loadable at ``source`` (one line).

    Example:
        >>> saved = load_saved_model("outputs/minilm-bbc")
        >>> saved.labels.names
    """
    folder = _local_folder(source, revision)
    run_config = read_run_config(folder)
    results = read_results(folder)
    model_args = ModelArguments(model=str(source), revision=revision, trust_remote_code=trust_remote_code)
    try:
        if has_weights(folder):
            model, processor, task, labels = _full_model(folder, run_config, model_args)
        else:
            model, processor, task, labels = _adapter_model(
                adapter_folder(folder), run_config, results, model_args
            )
    except HftlError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise _load_error(source, exc, trust_remote_code) from None
    model.eval()
    threshold = None
    if labels.multi_label:
        threshold = getattr(model.config, "multi_label_threshold", None)
        threshold = results.get("threshold") if threshold is None else threshold
    data_args = data_arguments(run_config, model.config)
    max_length = data_args.max_length or task.max_length(processor, model.config)
    if max_length is not None and data_args.max_length is None:
        data_args = replace(data_args, max_length=max_length)
    log(
        f"model: {source} ({task.name}, {len(labels)} {'outputs' if isinstance(task, RegressionTask) else 'labels'})"
    )
    return SavedModel(
        path=folder, model=model, processor=processor, task=task, labels=labels,
        threshold=None if threshold is None else float(threshold), max_length=max_length,
        data_args=data_args, run_config=run_config, results=results,
    )  # fmt: skip
