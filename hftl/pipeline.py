"""One fine-tuning run: plan -> build -> train -> evaluate -> save -> push.

:func:`run_finetuning` is the whole job for one set of options; :func:`hftl.finetune` calls it directly,
or once per trial through the hyperparameter search (``hftl.search``), which sits above this module.
"""

from __future__ import annotations

import pickle
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import DatasetDict
from transformers import Trainer, TrainerCallback, set_seed
from transformers.trainer_utils import has_length

from ._log import log
from .data import LabelSpace
from .data.streaming import group_by_length, stream_read_error
from .errors import CheckpointError, TrainingStopped
from .hub import write_card_and_images
from .hub.publish import push_run
from .methods import count_parameters
from .plan import RunPlan, plan_run
from .run.checkpoints import unsafe_checkpoint_error
from .run.cpu import use_all_cpu_cores
from .run.identity import record_run
from .run.output_dir import clear_earlier_run
from .run.run_files import record_outputs, snapshot_files, write_run_files
from .run.trackers import add_trackers, log_test_metrics, without_tracker_logs
from .tasks._embedding_pooling import add_pooling_layer, freeze_pooling_layers
from .techniques.batchnorm import recalibrate_batchnorm, wants_recalibration
from .techniques.early_stopping import add_early_stopping
from .techniques.head_fit import final_linear, fit_head, wants_head_fit
from .techniques.lr_finder import apply_lr_finder
from .trainer import HftlTrainer

__all__ = ["FinetuneResult", "run_finetuning"]


@dataclass
class FinetuneResult:
    """What :func:`hftl.finetune` returns.

    Args:
        metrics: Everything written to ``all_results.json`` (``train_*``, ``eval_*``, ``test_*``,
            ``trainable_params``, ``all_params``).
        output_dir: Where the model, metrics and config were saved.
        trainer: The ``transformers.Trainer`` used, for further evaluation or prediction.
        labels: The class names in id order.
        report: The task's report on the test split, as text (classification: scikit-learn's per-class report).
        search_dir: With ``hp_search``: the folder holding ``trials.csv``, ``trials.md`` and
            ``best_config.yaml`` (everything else describes the best trial).
        result_keys: The metrics :meth:`table` shows first, in order: the task's, then the method's
            (empty: every ``test_*`` score).
    """

    metrics: dict[str, Any]
    output_dir: Path
    trainer: Trainer
    labels: LabelSpace
    report: str = ""
    search_dir: Path | None = None
    result_keys: tuple[str, ...] = ()

    def table(self) -> str:
        """A small table of the headline metrics: the task's and the method's, loss, sizes and training time."""
        keys = self.result_keys or tuple(
            key
            for key in self.metrics
            if key.startswith("test_")
            and key not in _TABLE_TAIL
            and not key.endswith(("_runtime", "_per_second"))
        )
        keys = (*keys, *_TABLE_TAIL)
        rows = [(key, self.metrics[key]) for key in keys if key in self.metrics]
        rows.append(
            (
                "trainable_params",
                f"{self.metrics['trainable_params']:,} ({self.metrics['trainable_fraction']:.2%})",
            )
        )
        width = max(len(key) for key, _ in rows)
        return "\n".join(
            f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}"
            for key, value in rows
        )


# the rows every run's table ends with, whatever its task and method
_TABLE_TAIL = ("test_loss", "test_samples", "train_samples", "train_runtime")


def run_finetuning(*arguments, callbacks: list[TrainerCallback] | None = None) -> FinetuneResult:
    """One run of the four argument dataclasses (model, data, method, training), which stay unchanged."""
    # --- plan: every check and decision that needs no weights -----------------------------------
    plan = plan_run(*arguments)
    task, method, data, training_args = plan.task, plan.method, plan.data, plan.training_args
    output_dir = plan.output_dir
    if training_args.process_index == 0:
        if training_args.overwrite_output_dir and plan.resume is None:
            clear_earlier_run(output_dir)  # only what an earlier hftl run wrote (prepare_output_dir checked)
        record_run(output_dir, plan.identity)
    use_all_cpu_cores(training_args.world_size)

    # --- build: model inputs, the model with its new head, the method's Trainer -------------------
    tokenized = _preprocess(plan)
    train_dataset = tokenized["train"] if data.train_stream is None else _stream_inputs(plan)
    set_seed(training_args.seed)  # the new head's random init follows --seed (Trainer seeds later)
    load_kwargs = method.model_load_kwargs(plan.method_args)  # the method's dtype / quantization config
    model, head = task.build_model(plan.model.path, plan.config, data.labels, plan.model_args, load_kwargs)
    if plan.pooling:
        add_pooling_layer(
            model, plan.pooling
        )  # the checkpoint's sentence-embedding pooling, as a stock layer
    _maybe_fit_head(plan, model, head, tokenized)
    task.on_model_built(model, plan.processor, plan.data_args, training_args)
    model = method.prepare(model, head, plan.method_args, plan.model.hub_id or plan.model.path, task=task)
    freeze_pooling_layers(model)  # pooling, not a layer to train
    trainable, total = count_parameters(model)
    log(
        f"method {method.name}: {method.summary}; trainable parameters {trainable:,} of {total:,} ({trainable / total:.2%})"
    )
    on_accelerator = training_args.device.type not in ("cpu", "mps")
    collator = task.collator(plan.processor, pad_to_multiple_of=_pad_multiple(training_args, on_accelerator))
    compute_metrics, preprocess = task.metrics(data.labels)
    trainer = method.build_trainer(
        task, data, tokenized, collator, training_args, plan.method_args,
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=tokenized["validation"],
        processing_class=plan.processor,
        data_collator=collator,
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=preprocess,
        callbacks=callbacks,
        head_modules=head,
    )  # fmt: skip
    trainer.class_loss = plan.class_loss  # class weights / label smoothing (None: the model's own loss)
    add_early_stopping(trainer)
    add_trackers(trainer, plan)  # --report_to: the run's options and test metrics go to the trackers too
    if training_args.find_lr:
        apply_lr_finder(trainer, output_dir, plan.learning_rate_given, resuming=plan.resume is not None)

    # --- train ----------------------------------------------------------------------------------
    train_result = _train(trainer, plan)
    recalibrated = wants_recalibration(training_args, plan.model_args.from_scratch) and recalibrate_batchnorm(
        trainer
    )

    # --- evaluate: validation (the task's settings tuned on it), test, the method's own figures --------
    metrics: dict[str, Any] = {**train_result.metrics, "train_samples": _train_samples(trainer)}
    metrics.update(trainer.evaluate() if recalibrated else _final_eval_metrics(trainer))
    metrics["eval_samples"] = len(tokenized["validation"])
    metrics.update(task.after_training(trainer, model, data.labels))  # e.g. the multi-label threshold
    test = trainer.predict(tokenized["test"], metric_key_prefix="test")
    metrics.update(test.metrics)
    metrics.update(test_samples=len(tokenized["test"]), trainable_params=trainable, all_params=total)
    metrics["trainable_fraction"] = trainable / total
    metrics.update(
        method.extra_metrics(trainer, tokenized, data, trainer.compute_metrics, preprocess, metrics)
    )
    log_test_metrics(trainer, metrics)  # Trainer sends test metrics to few trackers, and only predict's
    trainer.shut_down_dataloader_workers()  # the run is done with its data; see the method for why now
    predictions = task.test_predictions(test, metrics, data.labels)
    report, report_table = task.report(predictions, test.label_ids, data.labels)
    log(f"{task.report_title}:\n{report}")

    # --- save: model, run files, card; then push ------------------------------------------------
    # hftl_outputs.json lists what changes from here on, and the tracker logs the run wrote into output_dir
    written_before = without_tracker_logs(snapshot_files(output_dir), trainer, output_dir)
    method.save(trainer, output_dir, plan.processor, plan.method_args)
    if trainer.is_world_process_zero():
        # the config records the push as asked, so it reruns the same job
        write_run_files(output_dir, metrics, report_table, plan.arguments, {"push_to_hub": plan.push_to_hub})
        write_card_and_images(
            output_dir, task=task, method=method, method_args=plan.method_args, data=data,
            data_args=plan.data_args, training_args=training_args, metrics=metrics, predictions=predictions,
            references=test.label_ids, log_history=trainer.state.log_history, base_model=plan.model.hub_id,
            model_dir=plan.model.path, dataset_on_hub=data.source.kind == "hub",
        )  # fmt: skip
        record_outputs(output_dir, written_before)  # what push uploads, --overwrite_output_dir deletes
    log(f"saved to {output_dir}")
    if plan.push_to_hub and trainer.is_world_process_zero():
        push_run(output_dir, training_args)
    return FinetuneResult(
        metrics=metrics, output_dir=Path(output_dir), trainer=trainer, labels=data.labels, report=report,
        result_keys=(*task.result_keys(data.labels), *method.result_keys(task, data.labels)),
    )  # fmt: skip


def _stream_inputs(plan: RunPlan):
    """--streaming: the training stream tokenised as it is read, in length-grouped batches by default."""
    data, args = plan.data, plan.training_args
    stream = plan.task.preprocess_stream(
        data.train_stream, plan.processor, data.input_columns, plan.max_length, plan.data_args
    )
    if args.train_sampling_strategy == "group_by_length":
        stream = group_by_length(
            stream, args.per_device_train_batch_size * max(1, args.world_size), args.seed
        )
    return stream


def _train_samples(trainer) -> int:
    """Training rows: the training set's size, or for a stream (--streaming) the examples read."""
    if has_length(trainer.train_dataset):
        return len(trainer.train_dataset)
    return trainer.state.global_step * trainer._global_batch()


def _preprocess(plan: RunPlan) -> DatasetDict:
    """The model inputs of every split (and of the unlabelled rows, for a method that learns from them)."""
    data, method = plan.data, plan.method
    with plan.training_args.main_process_first(desc="preprocessing"):  # the main process fills the cache
        splits = data.splits
        if data.unlabelled is not None and method.learns_from_unlabelled(plan.task):
            splits = DatasetDict({**splits, "unlabelled": data.unlabelled})
        elif data.unlabelled is not None:
            option = "--samples_per_class" if plan.data_args.samples_per_class else "--label_fraction"
            log(
                f"--method {method.name} can't learn from unlabelled rows: the {len(data.unlabelled)} hidden by {option} are dropped"
            )
        return plan.task.preprocess(
            splits, plan.processor, data.input_columns, plan.max_length, plan.data_args
        )


def _train(trainer: HftlTrainer, plan: RunPlan):
    """``trainer.train``, resuming where the plan says; a checkpoint that can't be loaded, or a stop signal,
    becomes one line."""
    resume = plan.resume
    try:
        result = trainer.train(resume_from_checkpoint=resume)
    except pickle.UnpicklingError as error:  # a checkpoint file that isn't plain tensors: never unpickled
        raise unsafe_checkpoint_error(resume, error) if resume else error from None
    except RuntimeError as error:  # a checkpoint with no run identity (plain Trainer), of another model
        if resume and "size mismatch" in str(error):
            raise CheckpointError(
                f"Checkpoint {resume} holds weights of other shapes than {plan.model_args.model} builds (it "
                "records no hftl_run.json to say which model wrote it); resume from a checkpoint of this model."
            ) from None
        raise
    except Exception as error:  # --streaming: a bad row past the head only shows when training reads it
        unreadable = stream_read_error(error, plan.data_args) if plan.data.train_stream is not None else None
        if unreadable is None:
            raise
        raise unreadable from None
    _raise_if_stopped(trainer, plan.output_dir)
    return result


def _pad_multiple(training_args, on_accelerator: bool) -> int | None:
    """Round padded lengths up: to 8 on a GPU (tensor-core tiles), to 32 under ``--torch_compile`` so a
    compiled model sees a few sequence lengths instead of one per batch (each new one recompiles)."""
    if training_args.torch_compile:
        return 32
    return 8 if on_accelerator else None


def _raise_if_stopped(trainer: HftlTrainer, output_dir: str) -> None:
    """A signal stopped training after saving a checkpoint: say where, and how to go on."""
    stop = trainer.graceful_stop
    if not stop.stopped:
        return
    name = stop.signal_name or "SIGTERM"  # another process got it
    state = trainer.state
    raise TrainingStopped(
        f"{name} stopped training at step {state.global_step} of {state.max_steps}; the complete checkpoint "
        f"{output_dir}/checkpoint-{state.global_step} holds it. Continue with the same command plus "
        "--resume_from_checkpoint auto.",
        signal_number=int(getattr(signal, name)),
    )


def _final_eval_metrics(trainer: Trainer) -> dict[str, float]:
    """The validation metrics of the final weights: reused from the last in-training evaluation when it
    ran at the last step (eval_strategy epoch), so the validation split isn't evaluated twice."""
    state = trainer.state
    for entry in reversed(state.log_history):
        if (
            "eval_loss" in entry
            and entry.get("step") == state.global_step
            and not trainer.args.load_best_model_at_end
        ):
            return {key: value for key, value in entry.items() if key.startswith("eval_")}
    return trainer.evaluate()


def _maybe_fit_head(plan: RunPlan, model, head: list[str], tokenized) -> None:
    """``--fit_head`` (auto: small text classification sets): the new head starts as a logistic regression
    on the pretrained features (hftl/techniques/head_fit.py)."""
    task, labels = plan.task, plan.data.labels
    single = (
        task.pools_text and task.label_kind(labels) == "single-label" and plan.data_args.long_text != "chunk"
    )
    new_head = bool(head) and getattr(model, "hftl_new_head", True)  # set by Task.build_model
    asked = plan.training_args.fit_head
    if asked is None and plan.data.tuned.get("fit_head") is False:  # a built-in demo measured without it
        asked = False
    fit, why = wants_head_fit(asked, len(tokenized["train"]), single, new_head)
    if why:
        log(why)
    linear = final_linear(model, head, len(labels.names)) if fit and plan.resume is None else None
    if linear is not None:
        fit_head(model, linear, tokenized["train"], task.collator(plan.processor, pad_to_multiple_of=None))
