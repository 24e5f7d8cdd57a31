"""The task interface, and model building shared by every classification task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import torch
from accelerate import init_empty_weights
from datasets import Dataset, DatasetDict
from safetensors import safe_open
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from .._log import log
from .._modules import HEAD_NAMES, named_head, within
from ..data.labels import LabelSpace
from ..errors import ModelNotFoundError, first_line
from ..options.config import DataArguments, ModelArguments

__all__ = ["Task"]


def _module_of(parameter_name: str) -> str:
    return parameter_name.rsplit(".", 1)[0]


def _safetensors_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a local safetensors checkpoint, read from the file headers only."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        return {}
    shapes = {}
    for name in files:
        try:
            with safe_open(str(folder / name), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise ModelNotFoundError(
                f"Weights file '{folder / name}' can't be read ({first_line(exc)[:120]}); "
                "download or save the model again."
            ) from None
    return shapes


def _in_backbone(name: str, prefix: str, head: list[str]) -> bool:
    """A parameter of the pretrained base model (``bert.``, ``vit.``, ...), outside any classification head."""
    return bool(prefix) and name.startswith(prefix + ".") and not within(name, head)


def _has_default_labels(config: PretrainedConfig) -> bool:
    names = list((config.id2label or {}).values())
    return all(str(name).startswith("LABEL_") for name in names)


class Task:
    """One kind of prediction: its model class, its input columns, its preprocessing and collator.

    Subclasses set the class attributes and implement the abstract methods; :func:`hftl.tasks.register_task`
    makes them available to ``--task``.
    """

    name: ClassVar[str]
    pipeline_tag: ClassVar[str]
    # what the model reads: "text" (a tokenizer) or "image" (an image processor, timm weights)
    modality: ClassVar[str]
    # peft's task_type for this task's models (it saves the head with the adapter), or None
    peft_task_type: ClassVar[str | None] = None
    auto_model_class: ClassVar[type]
    # Module names that hold the classification head, for checkpoints whose head loads from the file.
    head_names: ClassVar[tuple[str, ...]] = HEAD_NAMES
    # what --model and --dataset default to for this task (the offline demo)
    demo_model: ClassVar[str]
    demo_dataset: ClassVar[str]
    # DataArguments options this task resolves on auto: name -> fallback when no built-in dataset tunes it
    auto_options: ClassVar[dict[str, object]] = {}

    # --- data -------------------------------------------------------------------------------------
    def find_inputs(self, train: Dataset, label_column: str, data_args: DataArguments) -> list[str]:
        raise NotImplementedError

    def check_inputs(
        self, split_name: str, split: Dataset, input_columns: list[str], data_args: DataArguments
    ) -> Dataset:
        """Raise a DataError for input values the model can't take (before any model is built); may
        return the split with its inputs normalised (e.g. relative image paths made absolute)."""
        return split

    def load_processor(self, path: str, model_args: ModelArguments):
        raise NotImplementedError

    def max_length(self, processor, config: PretrainedConfig) -> int | None:
        """The model's real maximum input length (``None`` where length means nothing)."""
        return None

    def preprocess(
        self,
        data: DatasetDict,
        processor,
        input_columns: list[str],
        max_length: int | None,
        data_args: DataArguments,
    ) -> DatasetDict:
        raise NotImplementedError

    def adjust_training_args(self, training_args) -> None:
        """Change Trainer options the task needs (e.g. keep raw columns for on-the-fly transforms)."""

    def on_model_built(
        self, model: PreTrainedModel, processor, data_args: DataArguments, training_args
    ) -> None:
        """Record preprocessing choices in the model's config before training and saving."""

    def collator(self, processor, pad_to_multiple_of: int | None):
        raise NotImplementedError

    # --- model ------------------------------------------------------------------------------------
    def load_config(
        self, path: str, labels: LabelSpace, model_args: ModelArguments, processor=None
    ) -> PretrainedConfig:
        """The checkpoint's config with the label maps (and anything the processor implies) set."""
        return AutoConfig.from_pretrained(
            path,
            revision=model_args.revision,
            trust_remote_code=model_args.trust_remote_code,
            num_labels=len(labels),
            id2label=labels.id2label,
            label2id=labels.label2id,
            problem_type="multi_label_classification"
            if labels.multi_label
            else "single_label_classification",
        )

    def model_skeleton(self, config: PretrainedConfig, model_args: ModelArguments) -> PreTrainedModel:
        """The model's module tree without weights (meta device), for pre-flight checks."""
        with init_empty_weights():
            return self.auto_model_class.from_config(config, trust_remote_code=model_args.trust_remote_code)

    def check_weights(self, path: str, skeleton: PreTrainedModel, model_args: ModelArguments) -> None:
        """Pre-flight: refuse a checkpoint whose backbone doesn't fit its config (tensor shapes from the
        safetensors headers; no weights are loaded). transformers would re-initialise such tensors with a
        warning, quietly throwing the pretrained backbone away; only the classification head may differ."""
        if model_args.from_scratch or not Path(path).is_dir():
            return
        shapes = _safetensors_shapes(Path(path))
        if not shapes:
            return
        expected = {name: tuple(tensor.shape) for name, tensor in skeleton.state_dict().items()}
        prefix, head = skeleton.base_model_prefix, self._named_head(skeleton)
        matched, wrong = 0, []
        for key, shape in shapes.items():
            # checkpoints of the bare base model name their tensors without its prefix
            name = next((c for c in (key, f"{prefix}.{key}") if c in expected), None)
            if name is None:
                continue
            matched += 1
            if shape != expected[name] and _in_backbone(name, prefix, head):
                wrong.append((name, shape, expected[name]))
        if wrong:
            name, shape, need = wrong[0]
            raise ModelNotFoundError(
                f"The weights in '{path}' don't fit its config.json ({len(wrong)} backbone tensors differ, e.g. "
                f"{name}: {shape} in the file, {need} from the config); save both with save_pretrained."
            )
        if not matched:
            raise ModelNotFoundError(
                f"None of the {len(shapes)} tensors in '{path}' belongs to a {skeleton.config.model_type} model "
                f"(e.g. {next(iter(shapes))}); the config and weights come from different models: save both with "
                "save_pretrained, or fix config.json."
            )

    def _named_head(self, model) -> list[str]:
        """Head modules by their conventional names (outermost matches only)."""
        return named_head(model, self.head_names)

    def build_model(
        self, path: str, config: PretrainedConfig, labels: LabelSpace, model_args: ModelArguments
    ) -> tuple[PreTrainedModel, list[str]]:
        """Load the pretrained model with a head for ``labels``; also return the head's module names.

        The head is whatever the checkpoint did not provide (missing or wrongly shaped keys). A
        checkpoint that already has a head for other label names gets that head re-initialised.
        """
        if model_args.from_scratch:
            model = self.auto_model_class.from_config(config, trust_remote_code=model_args.trust_remote_code)
            log("from scratch: the architecture with random weights, no pretrained weights loaded")
            return model, self._named_head(model)
        model, info = self.auto_model_class.from_pretrained(
            path,
            config=config,
            revision=model_args.revision,
            trust_remote_code=model_args.trust_remote_code,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
            dtype=torch.float32,  # master weights in fp32; mixed precision comes from Trainer
        )
        mismatched = [key[0] if isinstance(key, tuple) else key for key in info.get("mismatched_keys", [])]
        wrong = [
            key for key in mismatched if _in_backbone(key, model.base_model_prefix, self._named_head(model))
        ]
        if wrong:  # a checkpoint check_weights could not read (e.g. pytorch_model.bin)
            raise ModelNotFoundError(
                f"The weights in '{path}' don't fit its config.json: {len(wrong)} backbone tensors differ in "
                f"shape (e.g. {wrong[0]}); save the config and weights together with save_pretrained."
            )
        head = sorted({_module_of(key) for key in [*info.get("missing_keys", []), *mismatched]})
        if not head:  # the checkpoint has a head of the right shape: keep it only for the same labels
            head = self._named_head(model)
            original = AutoConfig.from_pretrained(
                path, revision=model_args.revision, trust_remote_code=model_args.trust_remote_code
            )
            previous = list((original.id2label or {}).values())
            if not _has_default_labels(original) and previous != labels.names:
                for module_name in head:
                    module = model.get_submodule(module_name)
                    for parameter in module.parameters():
                        # transformers skips tensors it marked as loaded from the checkpoint
                        parameter._is_hf_initialized = False
                    for submodule in module.modules():
                        model._init_weights(submodule)
                log(
                    f"the checkpoint's head was trained for other labels ({', '.join(map(str, previous[:5]))}...): re-initialised {', '.join(head)}"
                )
            else:
                log(f"head loaded from the checkpoint: {', '.join(head)}")
        else:
            resized = sorted({_module_of(key) for key in mismatched})
            why = f" (the checkpoint's {', '.join(resized)} has another number of classes)" if resized else ""
            log(f"new head (randomly initialised): {', '.join(head)}{why}")
        return model, head
