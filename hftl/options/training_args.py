"""``HftlTrainingArguments``: ``transformers.TrainingArguments`` with hftl's defaults and switches."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from ..run.sharding import accelerate_precision
from .checks import check_options
from .techniques import TechniqueOptions

__all__ = ["HftlTrainingArguments", "auto_bf16"]


def auto_bf16(use_cpu: bool, fp16: bool) -> bool:
    """``--bf16`` on auto: what an accelerate launch config chose if it chose fp16 or bf16, else on where
    the GPU supports bf16 (off on CPU, where fp32 is faster)."""
    gpu_bf16 = not use_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    chosen = accelerate_precision()
    if chosen:
        # Trainer reads the same variable into ``mixed_precision``; the flag stays off where stock checks
        # refuse it (a CPU run without --use_cpu), which still runs bf16 from the variable
        return chosen == "bf16" and gpu_bf16
    return bool(gpu_bf16 and not fp16)


@dataclass
class HftlTrainingArguments(TrainingArguments, TechniqueOptions):
    """``transformers.TrainingArguments`` with transfer-learning defaults.

    Every ``TrainingArguments`` field is accepted. Changed defaults:

    - ``output_dir``: ``None`` -> a fresh timestamped folder under ``outputs/``.
    - ``learning_rate``: ``None`` -> auto: the built-in dataset's tuned rate for the method, else the
      method's default (``--help`` lists each method's).
    - ``num_train_epochs``: ``None`` -> auto: the built-in dataset's tuned value, else from the training
      set's size (hftl/techniques/budget.py).
    - ``per_device_train_batch_size``: 16 (was 8).
    - ``eval_strategy``: ``"epoch"`` (was ``"no"``); there is always a validation split.
    - ``logging_steps``: 10 (was 500), so short runs log a loss curve.
    - ``train_sampling_strategy``: ``"group_by_length"`` (was ``"random"``): batches of similar length
      pad less.
    - ``bf16``: ``None`` -> auto: what an ``accelerate launch`` config chose if it chose fp16 or bf16, else
      on where the GPU supports bf16, off on CPU (fp32 is faster there).
    - ``dataloader_num_workers``: ``None`` -> auto: the task decides (images: worker processes).

    It also carries hftl's transfer-learning switches (:class:`hftl.options.techniques.TechniqueOptions`).

    Example:
        >>> HftlTrainingArguments(output_dir="out").eval_strategy
        <IntervalStrategy.EPOCH: 'epoch'>
    """

    output_dir: str | None = field(
        default=None,
        metadata={"help": "Where the model, metrics and config go (default: outputs/<timestamp>-<method>)."},
    )
    learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Peak learning rate (auto: the built-in dataset's tuned rate for the method, else the "
            "method's default; the parser lists them)."
        },
    )
    num_train_epochs: float | None = field(
        default=None,
        metadata={"help": "Training epochs (auto: the built-in dataset's tuned value, else 3)."},
    )
    report_to: None | str | list[str] = field(
        default="none",
        metadata={
            "help": "Experiment trackers: tensorboard, trackio, mlflow or wandb (several: comma-separated), "
            "or none. hftl adds the run's options and test metrics (docs/trackers.md)."
        },
    )
    per_device_train_batch_size: int = field(
        default=16, metadata={"help": "Batch size per device for training."}
    )
    eval_strategy: str = field(
        default="epoch", metadata={"help": "When to evaluate on the validation split: no, steps or epoch."}
    )
    logging_steps: float = field(
        default=10,
        metadata={"help": "Log the training loss every N steps (a value below 1: that fraction of the run)."},
    )
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "Training sampler: group_by_length (default; less padding), random, sequential or "
            "batch_rebalance.",
            "choices": ["group_by_length", "random", "sequential", "batch_rebalance"],
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Allow --output_dir to be a folder that already holds a finished run."},
    )
    allow_changed_resume: bool = field(
        default=False,
        metadata={
            "help": "Resume even if the model, task, method, labels, training data or process count differ "
            "from the run that wrote the checkpoint (hftl refuses by default, naming what changed)."
        },
    )
    push_dry_run: bool = field(
        default=False,
        metadata={
            "help": "With --push_to_hub: write the exact folder that would be pushed to "
            "output_dir/push_dry_run and upload nothing (no network or token needed)."
        },
    )
    dataloader_num_workers: int | None = field(
        default=None,
        metadata={
            "help": "Dataloader worker processes (auto: image tasks decode and augment in min(4, half "
            "the cores) workers, at least 1; text is tokenised once up front, so 0)."
        },
    )
    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "bf16 mixed precision (auto: an accelerate config's fp16 or bf16 if it chose one, else on for GPUs that support bf16, off on CPU)."
        },
    )

    def __post_init__(self):
        # each numeric option against its range (hftl/options/checks.py), before stock checks see them
        check_options(self)
        # resolved for this machine: left out of hftl_config.yaml, so a rerun elsewhere resolves them anew
        self.machine_resolved = {"bf16"} if self.bf16 is None else set()
        if self.bf16 is None:
            self.bf16 = auto_bf16(self.use_cpu, self.fp16)
        if not torch.cuda.is_available():  # pinning needs an accelerator; stock Trainer warns otherwise
            self.dataloader_pin_memory = False
            self.machine_resolved.add("dataloader_pin_memory")
        self.check_techniques()
        auto_output_dir = self.output_dir is None
        # the task resolves it (adjust_training_args); stock validation needs an int meanwhile
        self.auto_dataloader_workers = self.dataloader_num_workers is None
        if self.auto_dataloader_workers:
            self.dataloader_num_workers = 0
            self.machine_resolved.add("dataloader_num_workers")
        super().__post_init__()
        if (
            auto_output_dir
        ):  # stock __post_init__ substitutes "trainer_output"; hftl picks a fresh folder at run time
            self.output_dir = None
