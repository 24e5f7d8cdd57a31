"""The method interface: how a pretrained model is prepared for training and how the result is saved."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from transformers import PreTrainedModel, Trainer

from ..options.config import MethodArguments

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
    """An adaptation method. Subclasses set ``name`` and ``default_learning_rate`` and override hooks.

    ``preflight`` runs on a weightless model skeleton before anything is loaded; ``prepare`` receives the
    loaded model and the names of its head modules; ``save`` writes the trained result.
    """

    name: ClassVar[str]
    default_learning_rate: ClassVar[float]
    summary: ClassVar[str] = ""

    # a built-in dataset's tuned learning rate for this method is the one tuned for that method name
    tuned_as: ClassVar[str | None] = None
    # class names in the order the model must use (a distillation teacher's), or None for the data's order
    label_order: list[str] | None = None

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

    def build_trainer(
        self, task, data, tokenized, collator, training_args, method_args, **trainer_kwargs
    ) -> Trainer:
        """The Trainer for this method; ``trainer_kwargs`` are the stock ``Trainer`` arguments."""
        from ..trainer import HftlTrainer

        return HftlTrainer(**trainer_kwargs)

    def extra_metrics(self, trainer, tokenized, data, compute_metrics, preprocess, metrics) -> dict:
        """Method-specific results added to ``all_results.json`` after testing."""
        return {}

    def prepare(
        self, model: PreTrainedModel, head: list[str], method_args: MethodArguments, base_model_id: str
    ):
        raise NotImplementedError

    def save(self, trainer: Trainer, output_dir: str | Path, processor, method_args: MethodArguments) -> None:
        save_model_and_processor(trainer, output_dir, processor)
