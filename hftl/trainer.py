"""hftl's Trainer: stock ``transformers.Trainer`` with evaluation kept in dataset order, checkpoints
marked complete only when fully written, and stops (NaN, SIGTERM/SIGINT) that never lose or poison one."""

from __future__ import annotations

import shutil
import signal
import threading
import weakref
from pathlib import Path

import datasets
import pyarrow.compute
import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, has_length

from .errors import CheckpointError, ConfigError, HftlError
from .run.checkpoints import MANIFEST, rotate_checkpoints, write_manifest
from .run.faults import fault_point
from .run.identity import RUN_FILE
from .run.sharding import run_precision
from .tasks._long_text import WINDOWS, document_aggregation, document_loss, pool_windows
from .techniques.param_groups import discriminative_param_groups, uses_param_groups
from .techniques.unfreeze import GradualUnfreezing

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
    """Length-grouped batches in shuffled order, drawn from a generator seeded with ``seed + epoch``.

    - The seed: accelerate seeds random sampling the same way. The stock sampler draws from the global
      RNG, which a resumed run restores to the step it stopped at, not to the start of that epoch:
      resumed after the first epoch, it fed other batches than the run it continues.
    - The order: the stock sampler sorts each megabatch (50 batches) longest first and feeds its batches
      in that order, a long-to-short curriculum that repeats every 50 steps. Measured on tweets after 40
      steps it cost 4 accuracy points against random batches. Here the longest batch still comes first
      (out-of-memory shows at step 1), the others follow in random order, and a short remainder last.
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        indices = get_length_grouped_indices(self.lengths, self.batch_size, generator=generator)
        batches = [indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size)]
        remainder = [batches.pop()] if len(batches) > 1 and len(batches[-1]) < self.batch_size else []
        order = [0, *(torch.randperm(len(batches) - 1, generator=generator) + 1).tolist()] if batches else []
        return iter([i for batch in (*(batches[j] for j in order), *remainder) for i in batch])


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
      only after that (see :mod:`hftl.run.checkpoints`);
    - on SIGTERM/SIGINT saves a complete checkpoint and stops (:class:`GracefulStop`);
    - never writes ``--hub_token`` into ``training_args.bin``;
    - loads a checkpoint's weights (resume, best model) the way ``from_pretrained`` does when the file
      names them otherwise than the model (transformers 5 saves ViT under its old key names; stock
      Trainer's non-strict load then keeps the base weights with a warning), and refuses what still
      doesn't fit;
    - gives the optimizer per-layer learning rates and a head learning rate, and unfreezes on schedule,
      when the switches ask (``head_modules``: the new head's module names; see :mod:`hftl.techniques`);
    - averages the loss over the global batch with several processes or gradient accumulation;
    - computes the loss with ``class_loss`` when set (class weights, label smoothing; see
      :mod:`hftl.techniques.class_weights`);
    - pools the logits of a document's windows (``--long_text chunk``: batches carrying
      :data:`~hftl.tasks._long_text.WINDOWS`) into the document's before the loss and the metrics.
    """

    class_loss = None  # a ClassLoss replacing the model's own loss; None: the model's (stock) loss

    def __init__(self, *args, head_modules: list[str] | None = None, **kwargs):
        self._dataloaders: weakref.WeakSet = weakref.WeakSet()  # for shut_down_dataloader_workers
        super().__init__(*args, **kwargs)
        # Classification models average their loss over the batch (BERT ignores num_items_in_batch even
        # though its forward takes **kwargs). Left True, Trainer skips dividing by the accumulation steps
        # and multiplies by the process count: gradients and logged loss N times too large.
        self.model_accepts_loss_kwargs = False
        self.graceful_stop = GracefulStop()
        self.add_callback(self.graceful_stop)
        # the new head's module names (Task.build_model): its own learning rate, unfrozen first
        self.head_modules = head_modules
        schedule = getattr(self.args, "unfreeze_schedule", "none")
        if schedule != "none":
            self.add_callback(GradualUnfreezing(schedule, self.args.unfreeze_interval, head_modules))

    def _get_dataloader(self, *args, **kwargs):
        dataloader = super()._get_dataloader(*args, **kwargs)
        self._dataloaders.add(dataloader)
        return dataloader

    def shut_down_dataloader_workers(self) -> None:
        """Stop the worker processes of this trainer's dataloaders now (persistent workers: images).

        Left to the garbage collector (the iterators sit in reference cycles) they cost 5 s each, often in
        the next run's ``free_memory``: it finalizes an iterator's index queues (their feeder threads exit)
        before the iterator's ``__del__`` queues the workers' stop signal, which then never reaches them;
        torch waits out its join timeout and kills them. A later ``evaluate``/``predict`` starts new ones."""
        for dataloader in list(self._dataloaders):
            loader = getattr(dataloader, "base_dataloader", dataloader)  # under accelerate's wrapper
            iterator = getattr(loader, "_iterator", None)  # where DataLoader keeps persistent workers
            if iterator is not None and hasattr(iterator, "_shutdown_workers"):
                loader._iterator = None
                iterator._shutdown_workers()

    def train(self, *args, **kwargs):
        """Trainer's ``train``; a run that ends here (an error, or stopped by a signal) leaves no dataloader
        workers behind. A finished one keeps them for the final evaluation (finetune() stops them after)."""
        try:
            result = super().train(*args, **kwargs)
        except BaseException:
            self.shut_down_dataloader_workers()
            raise
        if self.graceful_stop.stopped:
            self.shut_down_dataloader_workers()
        return result

    def create_optimizer(self, model=None):
        """Trainer's optimizer (``--optim``) over hftl's parameter groups when ``--layer_decay``,
        ``--head_learning_rate`` or ``--unfreeze_schedule`` asks for them (see
        :mod:`hftl.techniques.param_groups`); Trainer's own two groups otherwise."""
        if self.optimizer is not None or not uses_param_groups(self.args):
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        groups = discriminative_param_groups(
            opt_model,
            self.head_modules,
            self.args,
            self.get_decay_parameter_names(opt_model),
            include_frozen=self.args.unfreeze_schedule != "none",  # thawed later: must be in from the start
        )
        if self.optimizer_cls_and_kwargs is not None:
            optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs
        else:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        factory = not (isinstance(optimizer_cls, type) and issubclass(optimizer_cls, torch.optim.Optimizer))
        if factory or {"params", "model", "optimizer_dict"} & set(optimizer_kwargs):  # Muon, GaLore, LOMO
            raise ConfigError(
                f"--optim {self.args.optim} builds its own parameter groups, so --layer_decay, "
                "--head_learning_rate and --unfreeze_schedule can't set them; use an AdamW/SGD --optim."
            )
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

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
            batch = self._global_batch()
            return EpochSeededLengthGroupedSampler(batch, lengths, self._data_seed())
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            return EpochSeededLengthGroupedSampler(self._global_batch(), sampler.lengths, self._data_seed())
        return sampler

    def _global_batch(self) -> int:
        """Examples per optimizer step over all processes: the sampler groups by this, so every process
        count with the same global batch trains on the same batches (accelerate hands each process a
        consecutive slice of it), and N processes of B reach the weights of one process of N*B."""
        return self.args.train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size

    def _data_seed(self) -> int:
        return self.args.data_seed if self.args.data_seed is not None else self.args.seed

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if WINDOWS in inputs:  # --long_text chunk: the loss is on each document's pooled logits
            return self._document_loss(model, inputs, return_outputs)
        if self.class_loss is None or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = self.class_loss(outputs.logits, labels)  # a batch mean, like the models' own loss
        return (loss, outputs) if return_outputs else loss

    def _document_loss(self, model, inputs, return_outputs):
        """A batch of documents' windows (``--long_text chunk``): the model runs on every window, the
        windows' logits are pooled per document (the aggregation ``config.json`` records), and the loss
        (``class_loss``, else the model's own for its problem type) is on the documents' logits, which
        the outputs then hold, so the metrics count documents. The loss is per document rather than per
        window: a window without the label's evidence isn't trained to predict it, and every document
        weighs the same whatever its length."""
        windows, labels = inputs.pop(WINDOWS), inputs.pop("labels", None)
        outputs = model(**inputs)
        unwrapped = self.accelerator.unwrap_model(model)
        outputs.logits = pool_windows(outputs.logits, windows, document_aggregation(unwrapped))
        loss = (
            None
            if labels is None
            else document_loss(outputs.logits, labels, unwrapped.config, self.class_loss)
        )
        outputs.loss = loss
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        if WINDOWS not in inputs or inputs.get("labels") is not None:  # with labels: through compute_loss
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        inputs = self._prepare_inputs(inputs)  # unlabelled documents: their pooled logits
        with torch.no_grad(), self.compute_loss_context_manager():
            _, outputs = self._document_loss(model, inputs, return_outputs=True)
        return None, None if prediction_loss_only else outputs.logits.detach(), None

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
        return run_precision(self.args)

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
            run_file = run_dir / RUN_FILE
            if run_file.is_file() and not run_file.is_symlink():  # the run's identity, vouched for by the
                shutil.copyfile(
                    run_file, folder / RUN_FILE
                )  # manifest: a resume checks this checkpoint's own
            write_manifest(folder, self.args.world_size, step)
            rotate_checkpoints(run_dir, keep, [str(folder), self.state.best_model_checkpoint], step)

    _weights_source: str | None = None  # the checkpoint folder Trainer is loading weights from

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        self._weights_source = resume_from_checkpoint
        try:
            super()._load_from_checkpoint(resume_from_checkpoint, model)
        finally:
            self._weights_source = None

    def _issue_warnings_after_load(self, load_result) -> None:
        ignored = set(getattr(self.model, "_keys_to_ignore_on_save", None) or ())
        missing = set(load_result.missing_keys) - ignored
        if self._weights_source is None or not (missing or load_result.unexpected_keys):
            return super()._issue_warnings_after_load(load_result)
        # the file's names differ from the model's: load it through from_pretrained, which converts them
        model = self.accelerator.unwrap_model(self.model)
        converted = type(model).from_pretrained(
            self._weights_source, config=model.config, dtype=torch.float32
        )
        result = model.load_state_dict(converted.state_dict(), strict=False)
        still = sorted(set(result.missing_keys) - ignored) + sorted(result.unexpected_keys)
        if still:
            raise CheckpointError(
                f"The weights in {self._weights_source} don't fit this model ({len(still)} tensors, e.g. "
                f"{still[0]}); resume from a checkpoint of this run."
            )

    def _load_best_model(self) -> None:
        self._weights_source = self.state.best_model_checkpoint
        try:
            super()._load_best_model()
        finally:
            self._weights_source = None
        # with save_total_limit 1 Trainer next deletes every checkpoint but the best with a bare rmtree;
        # rotate first, crash-safe (manifest before files), so it finds nothing left to delete
        best = self.state.best_model_checkpoint
        if self.args.should_save and self.args.save_total_limit == 1 and best:
            rotate_checkpoints(Path(best).parent, 1, [best], self.state.global_step)
