"""The public face: :func:`finetune` (one run, or a hyperparameter search over runs) and :func:`distill`."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from .methods.distill import Distillation
from .options._collect import collect_arguments
from .options.config import DataArguments, HftlTrainingArguments, MethodArguments, ModelArguments
from .pipeline import FinetuneResult, run_finetuning
from .search.trials import run_search

__all__ = ["finetune", "distill", "FinetuneResult"]


def finetune(
    model_args: ModelArguments | None = None,
    data_args: DataArguments | None = None,
    method_args: MethodArguments | None = None,
    training_args: HftlTrainingArguments | None = None,
    *,
    callbacks: list[TrainerCallback] | None = None,
    **options: Any,
) -> FinetuneResult:
    """Adapt a pretrained model to labelled data and save it; return metrics and paths.

    Every option of the command line is a keyword argument here (any ``TrainingArguments`` field
    included), and ``config="file.yaml"`` reads a YAML config first; keywords override it.
    ``callbacks`` go to the Trainer (e.g. ``EarlyStoppingCallback``). The argument objects passed in are
    not changed: the run resolves its own copies (see ``hftl.plan``).

    Example:
        >>> result = finetune(model="sentence-transformers/all-MiniLM-L6-v2", dataset="bbc-news",
        ...                   output_dir="out/minilm-bbc")
        >>> result.metrics["test_accuracy"]
    """
    arguments = collect_arguments(
        {"model": model_args, "data": data_args, "method": method_args, "training": training_args}, options
    )
    if arguments[3].hp_search:  # each trial is one run of its own, without hp_search
        return run_search(arguments, callbacks=callbacks)
    return run_finetuning(*arguments, callbacks=callbacks)


def distill(
    teacher: str, student: str | None = None, dataset: str | None = None, **options: Any
) -> FinetuneResult:
    """Distill ``teacher`` into ``student``: :func:`finetune` with the distillation method.

    Args:
        teacher: The fine-tuned teacher (an hftl output directory, a LoRA output directory or a Hub id).
        student: A separate student checkpoint; leave it out to use a copy of the teacher with
            ``student_layers`` layers (half the teacher's by default).
        dataset: The labelled data, as for :func:`finetune`.
        options: Any other :func:`finetune` option (``student_layers``, ``distill_alpha``,
            ``distill_temperature``, ``teacher_logits``, ``output_dir``, ...).

    Example:
        >>> result = distill(teacher="outputs/minilm-bbc", student_layers=3, dataset="bbc-news")
        >>> result.metrics["test_accuracy"], result.metrics["teacher_test_accuracy"]
    """
    return finetune(method=Distillation.name, teacher=teacher, model=student, dataset=dataset, **options)
