"""The task interface, and model building shared by every classification task."""

from __future__ import annotations

from typing import ClassVar

import torch
from accelerate import init_empty_weights
from datasets import Dataset, DatasetDict
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from .._log import log
from ..config import DataArguments, ModelArguments
from ..data.labels import LabelSpace

__all__ = ["Task"]


def _module_of(parameter_name: str) -> str:
    return parameter_name.rsplit(".", 1)[0]


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
    auto_model_class: ClassVar[type]
    # Module names that hold the classification head, for checkpoints whose head loads from the file.
    head_names: ClassVar[tuple[str, ...]] = ("classifier", "score", "pre_classifier", "head", "fc")
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

    def _named_head(self, model) -> list[str]:
        """Head modules by their conventional names (outermost matches only)."""
        head = [name for name, _ in model.named_modules() if name.rsplit(".", 1)[-1] in self.head_names]
        return [name for name in head if not any(name.startswith(other + ".") for other in head)]

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
            log(f"new head (randomly initialised): {', '.join(head)}")
        return model, head
