"""The method interface: how a pretrained model is prepared for training and how the result is saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import PreTrainedModel, Trainer

from ..options.config import MethodArguments
from ..trainer import HftlTrainer

__all__ = ["Method", "count_parameters", "save_model_and_processor"]


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def save_model_and_processor(trainer: Trainer, output_dir: str | Path, processor) -> None:
    """Model (safetensors) and processor at ``output_dir``, through Trainer so every launcher is handled.

    ``training_args.bin`` is a pickle of the arguments, including ``hub_token``; hftl writes the
    resolved config as YAML instead, so the pickle is removed.
    """
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        processor.save_pretrained(str(output_dir))
        (Path(output_dir) / "training_args.bin").unlink(missing_ok=True)


class Method:
    """An adaptation method: subclass it, set the class variables, override the hooks, register the class
    with :func:`hftl.methods.register_method`. Each run gets an instance of its own (it may hold state).

    ``setup`` runs first in pre-flight; ``preflight`` on a weightless model skeleton before anything is
    loaded; ``model_load_kwargs`` go to ``from_pretrained``; ``prepare`` receives the loaded model and
    the names of its head modules; ``build_trainer`` makes the Trainer; ``save`` writes the result.
    The remaining hooks feed the model card and ``--hp_search``.

    Example:
        >>> class BitFit(Method):
        ...     name = "bitfit"
        ...     default_learning_rate = 1e-3
        ...     summary = help = "only biases and the head train"
        ...     def prepare(self, model, head, method_args, base_model_id, *, task=None):
        ...         for name, parameter in model.named_parameters():
        ...             parameter.requires_grad_(name.endswith("bias") or name.split(".")[0] in head)
        ...         return model
    """

    name: ClassVar[str]
    default_learning_rate: ClassVar[float]
    summary: ClassVar[str] = ""  # logged and written into the model card
    help: ClassVar[str] = ""  # a few words for the ``--method`` help
    # options a run of this method can't do without (named in the ``--method`` help)
    required_options: ClassVar[tuple[str, ...]] = ()
    # which options and schedules the method supports (each refused with the others, naming these)
    trains_from_scratch: ClassVar[bool] = False  # --from_scratch: random weights
    takes_student_layers: ClassVar[bool] = False  # --student_layers: a truncated copy of the model
    unfreezes: ClassVar[bool] = False  # --unfreeze_schedule: frozen layers thawed during training
    # --long_text chunk: the method's Trainer pools a document's window logits (HftlTrainer.compute_loss)
    pools_document_windows: ClassVar[bool] = True
    # the saved model is the trained architecture as a whole, so a sentence-embedding pooling folded into it
    # (--pooling) is saved too; adapters are saved against the base checkpoint's architecture instead
    folds_pooling: ClassVar[bool] = False
    # trains under FSDP / DeepSpeed sharding: its saving goes through Trainer.save_model, which gathers
    # the shards; a method that saves otherwise says why not in ``unsharded_reason`` (docs/scaling.md)
    shards: ClassVar[bool] = False
    # trains from a --streaming training set (one read as it trains, never whole in memory)
    streams: ClassVar[bool] = True
    unsharded_reason: ClassVar[str] = "its saving doesn't gather sharded weights"

    # learning rates measured for this method on built-in datasets (dataset name -> rate): its auto rate there
    tuned_learning_rates: ClassVar[dict[str, float]] = {}
    # class names in the order the model must use (a distillation teacher's), or None for the data's order
    label_order: list[str] | None = None

    @classmethod
    def tuned_learning_rate(cls, dataset: str | None, tuned: dict) -> float | None:
        """The auto learning rate on ``dataset`` (``tuned``: its registered settings): the dataset's own
        ``learning_rate[name]``, else the rate measured for this method there, else ``None``."""
        return tuned.get("learning_rate", {}).get(cls.name) or cls.tuned_learning_rates.get(dataset or "")

    def setup(self, model_args, data_args, method_args: MethodArguments, task) -> None:
        """First pre-flight step, before the model is resolved: check and fill method-specific options."""

    def preflight(
        self,
        skeleton: PreTrainedModel,
        method_args: MethodArguments,
        *,
        processor=None,
        data_args=None,
        task=None,
    ) -> None:
        """Raise a ConfigError for options that can't work with this model (auto settings are resolved)."""

    def learns_from_unlabelled(self, task) -> bool:
        """Whether training rows without labels (``--label_fraction``) are of any use to this method."""
        return False

    def model_load_kwargs(self, method_args: MethodArguments) -> dict[str, Any]:
        """Keyword arguments for the pretrained model's ``from_pretrained`` (dtype, quantization config).

        fp32 master weights by default: mixed precision comes from Trainer's autocast.
        """
        return {"dtype": torch.float32}

    def prepare(
        self, model: PreTrainedModel, head: list[str], method_args: MethodArguments, base_model_id: str,
        *, task=None,
    ):  # fmt: skip
        """The model to train: ``requires_grad`` set, adapters added (``head``: the new head's modules)."""
        raise NotImplementedError

    def build_trainer(
        self, task, data, tokenized, collator, training_args, method_args, **trainer_kwargs
    ) -> Trainer:
        """The Trainer for this method; ``trainer_kwargs`` are the stock ``Trainer`` arguments."""
        return HftlTrainer(**trainer_kwargs)

    def extra_metrics(self, trainer, tokenized, data, compute_metrics, preprocess, metrics) -> dict:
        """Method-specific results added to ``all_results.json`` after testing."""
        return {}

    def result_keys(self, task, labels) -> list[str]:
        """Keys of :meth:`extra_metrics` that :meth:`hftl.FinetuneResult.table` shows, after the task's."""
        return []

    def save(self, trainer: Trainer, output_dir: str | Path, processor, method_args: MethodArguments) -> None:
        save_model_and_processor(trainer, output_dir, processor)

    def card_hyperparameters(self, method_args: MethodArguments) -> dict[str, Any]:
        """The method's own settings for the model card's hyperparameter list (label -> value)."""
        return {}

    def card_teacher(self, method_args: MethodArguments) -> str | None:
        """The model this one learned from besides its base (a distillation teacher), for the card."""
        return None

    def card_sections(self, metrics: dict, task, labels) -> list[str]:
        """Markdown blocks of the method's own the card shows after its results table (e.g. a teacher
        vs student table), each without a trailing newline."""
        return []

    def search_space(self, method_args: MethodArguments, training_args) -> dict[str, Any]:
        """``--hp_search`` dimensions of the method's own, in ``--hp_space`` form: ``option: [choices]``
        or ``{low, high, log}`` (the configured value is added to each, so trial 0 fits)."""
        return {}
