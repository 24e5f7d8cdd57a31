"""hftl's Trainer: stock ``transformers.Trainer`` with evaluation kept in dataset order, checkpoints
marked complete only when fully written, and stops (NaN, SIGTERM/SIGINT) that never lose or poison one."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import datasets
import pyarrow.compute
import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, has_length

from ._faults import fault_point
from .checkpoints import MANIFEST, rotate_checkpoints, write_manifest
from .errors import HftlError

__all__ = ["HftlTrainer", "NonFiniteLossError", "GracefulStop"]


class NonFiniteLossError(HftlError):
    """The training loss (or a weight about to be saved) became NaN or infinite; nothing was saved."""


class GracefulStop(TrainerCallback):
    """SIGTERM or SIGINT during training (a preempted job, Ctrl-C): finish the current step, save a
    complete checkpoint, stop. A second signal of the same kind acts at once, as usual. With several
    processes, all stop at the same step even when only one got the signal (one tiny all-reduce a step)."""

    def __init__(self):
        self.signal_name: str | None = None
        self.stopped = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame):
        self.signal_name = signal.Signals(signum).name
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def on_train_begin(self, args, state, control, **kwargs):
        self.signal_name, self.stopped = None, False
        if threading.current_thread() is threading.main_thread():  # signals reach only the main thread
            self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}

    def on_step_end(self, args, state, control, **kwargs):
        fault_point("step", state.global_step)
        stop = self.signal_name is not None
        if args.world_size > 1 and torch.distributed.is_initialized():
            flag = torch.tensor([float(stop)], device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        if stop:
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped batches shuffled by a generator seeded with ``seed + epoch``, as accelerate seeds
    random sampling. The stock sampler draws from the global RNG, which a resumed run restores to the
    step it stopped at, not to the start of that epoch: resumed after the first epoch, it fed other
    batches than the run it continues."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


def _non_finite(model: torch.nn.Module) -> str | None:
    """The first parameter or buffer holding NaN/inf (``None``: all finite)."""
    tensors = [
        (name, t) for name, t in (*model.named_parameters(), *model.named_buffers()) if t.is_floating_point()
    ]
    if not tensors or torch.stack([torch.isfinite(t).all() for _, t in tensors]).all():  # one host sync
        return None
    return next(name for name, t in tensors if not torch.isfinite(t).all())


class HftlTrainer(Trainer):
    """``Trainer`` that

    - shuffles length-grouped batches by seed and epoch, so a resumed run sees the same batches;
    - keeps evaluation and prediction in dataset order: with ``group_by_length`` the stock Trainer also
      length-groups evaluation, so ``trainer.predict(ds).predictions[i]`` would not belong to ``ds[i]``;
    - stops at the first non-finite training loss and never saves non-finite weights (one line; stock
      Trainer trains on and saves NaNs);
    - writes a manifest into each ``checkpoint-<step>`` after every file, and rotates old checkpoints
      only after that (see :mod:`hftl.checkpoints`);
    - on SIGTERM/SIGINT saves a complete checkpoint and stops (:class:`GracefulStop`);
    - never writes ``--hub_token`` into ``training_args.bin``;
    - averages the loss over the global batch with several processes or gradient accumulation.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Classification models average their loss over the batch (BERT ignores num_items_in_batch even
        # though its forward takes **kwargs). Left True, Trainer skips dividing by the accumulation steps
        # and multiplies by the process count: gradients and logged loss N times too large.
        self.model_accepts_loss_kwargs = False
        self.graceful_stop = GracefulStop()
        self.add_callback(self.graceful_stop)

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        name = self.processing_class.model_input_names[0] if self.processing_class is not None else None
        if (
            self.args.train_sampling_strategy == "group_by_length"
            and isinstance(dataset, datasets.Dataset)
            and name in dataset.column_names
        ):  # lengths from the Arrow column: the stock sampler reads every row to find them
            tokens = dataset.with_format("arrow", columns=[name])[:][name]
            lengths = pyarrow.compute.list_value_length(tokens).to_pylist()
            batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return EpochSeededLengthGroupedSampler(batch, lengths, self._data_seed())
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            return EpochSeededLengthGroupedSampler(sampler.batch_size, sampler.lengths, self._data_seed())
        return sampler

    def _data_seed(self) -> int:
        return self.args.data_seed if self.args.data_seed is not None else self.args.seed

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():  # one host sync per step; a NaN must never reach a checkpoint
            raise NonFiniteLossError(
                f"The training loss became {loss.detach().float().item()} at step {self.state.global_step + 1} "
                f"({self._precision()}, learning rate {self.args.learning_rate:g}); nothing was saved. Try a "
                "lower --learning_rate, --max_grad_norm 1.0, or fp32 instead of fp16/bf16."
            )
        return loss

    def _precision(self) -> str:
        return "bf16" if self.args.bf16 else "fp16" if self.args.fp16 else "fp32"

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        bad = _non_finite(self.model)
        if bad is not None:
            raise NonFiniteLossError(
                f"{bad} holds NaN or infinite values at step {self.state.global_step} ({self._precision()}), "
                "so nothing was saved. Try a lower --learning_rate, --max_grad_norm 1.0, or fp32."
            )
        super().save_model(output_dir, _internal_call)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        token, self.args.hub_token = self.args.hub_token, None  # training_args.bin is a pickle of args
        try:
            super()._save(output_dir, state_dict)
        finally:
            self.args.hub_token = token

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        fault_point("save:after-weights", self.state.global_step)
        super()._save_optimizer_and_scheduler(output_dir)

    def _save_checkpoint(self, model, trial) -> None:
        run_dir = Path(self._get_output_dir(trial=trial))
        folder = run_dir / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        if self.args.should_save:  # saving into an existing folder: incomplete until the new manifest
            (folder / MANIFEST).unlink(missing_ok=True)
        keep, self.args.save_total_limit = self.args.save_total_limit, None  # rotate after the manifest
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = keep
        self.accelerator.wait_for_everyone()  # every process has written its RNG state
        if self.args.should_save:
            step = self.state.global_step
            fault_point("save:before-manifest", step)
            write_manifest(folder, self.args.world_size, step)
            rotate_checkpoints(run_dir, keep, [str(folder), self.state.best_model_checkpoint], step)
