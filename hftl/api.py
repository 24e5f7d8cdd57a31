"""``finetune()``: resolve, check, build, train, evaluate, save."""

from __future__ import annotations

import pickle
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import DatasetDict
from transformers import Trainer, TrainerCallback, set_seed

from ._log import log
from .data import LabelSpace, prepare_data
from .errors import CheckpointError, ConfigError, HftlError, ModelNotFoundError, TrainingStopped, first_line
from .hub import check_can_push, push, write_card_and_images
from .methods import check_method_switches, count_parameters, get_method, methods_with
from .methods.distill import Distillation
from .options._collect import collect_arguments
from .options.checks import check_room_for_text
from .options.config import DataArguments, HftlTrainingArguments, MethodArguments, ModelArguments
from .resolve import resolve_model
from .run.checkpoints import resume_checkpoint, unsafe_checkpoint_error
from .run.cpu import use_all_cpu_cores
from .run.identity import check_same_run, record_run, run_identity
from .run.output_dir import check_free_space, clear_earlier_run, prepare_output_dir
from .run.run_files import record_outputs, snapshot_files, write_run_files
from .tasks import get_task
from .techniques.batchnorm import recalibrate_batchnorm, wants_recalibration
from .techniques.dropout import override_dropout
from .techniques.early_stopping import add_early_stopping, check_best_metric
from .techniques.lr_finder import apply_lr_finder
from .techniques.param_groups import check_layer_options
from .trainer import HftlTrainer

__all__ = ["finetune", "distill", "FinetuneResult"]


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns.

    Args:
        metrics: Everything written to ``all_results.json`` (``train_*``, ``eval_*``, ``test_*``,
            ``trainable_params``, ``all_params``).
        output_dir: Where the model, metrics and config were saved.
        trainer: The ``transformers.Trainer`` used, for further evaluation or prediction.
        labels: The class names in id order.
        report: scikit-learn's per-class report on the test split, as text.
        search_dir: With ``hp_search``: the folder holding ``trials.csv``, ``trials.md`` and
            ``best_config.yaml`` (everything else describes the best trial).
    """

    metrics: dict[str, Any]
    output_dir: Path
    trainer: Trainer
    labels: LabelSpace
    report: str = ""
    search_dir: Path | None = None

    def table(self) -> str:
        """A small table of the headline metrics: test accuracy and macro-F1, sizes and training time."""
        keys = ("test_accuracy", "test_micro_f1", "test_macro_f1", "test_mAP", "test_subset_accuracy", "threshold",
                "teacher_test_accuracy", "teacher_test_micro_f1", "retention", "latency_speedup", "test_loss",
                "test_samples", "train_samples", "train_runtime")  # fmt: skip
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


def _pad_multiple(training_args: HftlTrainingArguments, on_accelerator: bool) -> int | None:
    """Round padded lengths up: to 8 on a GPU (tensor-core tiles), to 32 under ``--torch_compile`` so a
    compiled model sees a few sequence lengths instead of one per batch (each new one recompiles)."""
    if training_args.torch_compile:
        return 32
    return 8 if on_accelerator else None


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
    ``callbacks`` go to the Trainer (e.g. ``EarlyStoppingCallback``).

    Example:
        >>> result = finetune(model="sentence-transformers/all-MiniLM-L6-v2", dataset="bbc-news",
        ...                   output_dir="out/minilm-bbc")
        >>> result.metrics["test_accuracy"]
    """
    model_args, data_args, method_args, training_args = collect_arguments(
        {"model": model_args, "data": data_args, "method": method_args, "training": training_args}, options
    )
    if training_args.hp_search:  # each trial is a finetune() call of its own, without hp_search
        from .search.trials import run_search

        return run_search((model_args, data_args, method_args, training_args), callbacks=callbacks)
    # --- pre-flight: every check that needs no model weights ------------------------------------
    task = get_task(model_args.task)
    method = get_method(method_args.method)()  # one instance per run: a method may hold state
    method.setup(model_args, data_args, method_args, task)
    model_args.model = model_args.model or task.demo_model
    data_args.dataset = data_args.dataset or task.demo_dataset
    check_method_switches(method, model_args, method_args)  # --from_scratch, --student_layers
    if model_args.weights and task.name != "image-classification":
        raise ConfigError("--weights loads a timm architecture, which only --task image-classification uses.")
    push_to_hub = training_args.push_to_hub
    if push_to_hub:  # before any compute: a repo id, and a reachable Hub and a token unless a dry run
        check_can_push(training_args.hub_model_id, training_args.push_dry_run, training_args.hub_token)
    training_args.push_to_hub = (
        False  # Trainer would create the repo at once and push pickles; hftl pushes at the end
    )
    resume = resume_checkpoint(
        training_args.resume_from_checkpoint,
        training_args.output_dir,
        training_args.world_size,
        training_args.allow_changed_resume,
    )
    output_dir = prepare_output_dir(
        training_args, method.name, resuming=resume is not None,
        resume_asked=bool(training_args.resume_from_checkpoint),
    )  # fmt: skip
    resolved = resolve_model(model_args.model, model_args.revision, model_args.weights)
    check_free_space(output_dir, resolved.path)  # a full disk would only show at the first save
    log(f"model: {model_args.model} ({resolved.source})")
    data = prepare_data(data_args, task, label_order=method.label_order)
    class_loss = task.plan_loss(training_args, data.splits["train"], data.labels)  # prints per-class counts
    check_best_metric(training_args, task.metric_names(data.labels), task.label_kind(data.labels))
    identity = run_identity(model_args.model, task.name, method.name, data.labels.names, data.splits["train"])
    if resume is not None:
        check_same_run(resume, identity, training_args.allow_changed_resume)  # the checkpoint's own run
    processor, config = _load_processor_and_config(task, resolved.path, data.labels, model_args)
    override_dropout(config, training_args.dropout)  # the config the model is built from
    learning_rate_given = training_args.learning_rate is not None  # else --find_lr's suggestion is used
    max_length = _resolve_auto_settings(task, method, data, data_args, training_args, processor, config)
    check_room_for_text(processor, max_length, data.input_columns)  # needs the tokenizer's special tokens
    skeleton = task.model_skeleton(config, model_args)
    task.check_weights(resolved.path, skeleton, model_args)  # a backbone that doesn't fit its config
    method.preflight(skeleton, method_args, processor=processor, data_args=data_args, task=task)
    check_layer_options(skeleton, training_args, method.name, methods_with("unfreezes"))  # --layer_decay, ...

    # --- compute --------------------------------------------------------------------------------
    if training_args.process_index == 0:
        if training_args.overwrite_output_dir and resume is None:
            clear_earlier_run(output_dir)  # only what an earlier hftl run wrote (prepare_output_dir checked)
        record_run(output_dir, identity)
    use_all_cpu_cores(training_args.world_size)
    with training_args.main_process_first(desc="preprocessing"):  # the main process fills the cache first
        splits = data.splits
        if data.unlabelled is not None and method.learns_from_unlabelled(task):
            splits = DatasetDict({**splits, "unlabelled": data.unlabelled})
        elif data.unlabelled is not None:
            option = "--samples_per_class" if data_args.samples_per_class else "--label_fraction"
            log(
                f"--method {method.name} can't learn from unlabelled rows: the {len(data.unlabelled)} hidden by {option} are dropped"
            )
        tokenized = task.preprocess(splits, processor, data.input_columns, max_length, data_args)
    task.adjust_training_args(training_args)
    # the new head's random init must follow --seed too (Trainer seeds only later, in its __init__)
    set_seed(training_args.seed)
    load_kwargs = method.model_load_kwargs(method_args)  # the method's dtype / quantization config
    model, head = task.build_model(resolved.path, config, data.labels, model_args, load_kwargs)
    task.on_model_built(model, processor, data_args, training_args)
    model = method.prepare(model, head, method_args, resolved.hub_id or resolved.path, task=task)
    trainable, total = count_parameters(model)
    log(
        f"method {method.name}: {method.summary}; trainable parameters {trainable:,} of {total:,} ({trainable / total:.2%})"
    )
    on_accelerator = training_args.device.type not in ("cpu", "mps")
    collator = task.collator(processor, pad_to_multiple_of=_pad_multiple(training_args, on_accelerator))
    compute_metrics, preprocess = task.metrics(data.labels)
    trainer = method.build_trainer(
        task, data, tokenized, collator, training_args, method_args,
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=processor,
        data_collator=collator,
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=preprocess,
        callbacks=callbacks,
        head_modules=head,
    )  # fmt: skip
    trainer.class_loss = class_loss  # class weights / label smoothing (None: the model's own loss)
    add_early_stopping(trainer)
    if training_args.find_lr:
        apply_lr_finder(trainer, output_dir, learning_rate_given, resuming=resume is not None)
    try:
        train_result = trainer.train(resume_from_checkpoint=resume)
    except pickle.UnpicklingError as error:  # a checkpoint file that isn't plain tensors: never unpickled
        raise unsafe_checkpoint_error(resume, error) if resume else error from None
    except RuntimeError as error:  # a checkpoint with no run identity (plain Trainer), of another model
        if resume and "size mismatch" in str(error):
            raise CheckpointError(
                f"Checkpoint {resume} holds weights of other shapes than {model_args.model} builds (it records "
                "no hftl_run.json to say which model wrote it); resume from a checkpoint of this model."
            ) from None
        raise
    _raise_if_stopped(trainer, output_dir)
    recalibrated = wants_recalibration(training_args, model_args.from_scratch) and recalibrate_batchnorm(
        trainer
    )
    metrics: dict[str, Any] = {**train_result.metrics, "train_samples": len(trainer.train_dataset)}
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
    trainer.shut_down_dataloader_workers()  # the run is done with its data; see the method for why now
    predictions = task.test_predictions(test, metrics, data.labels)
    report, report_table = task.report(predictions, test.label_ids, data.labels)
    log(f"per-class report on the test split:\n{report}")

    written_before = snapshot_files(output_dir)  # hftl_outputs.json lists what changes from here on
    method.save(trainer, output_dir, processor, method_args)
    training_args.push_to_hub = push_to_hub  # recorded as asked, so the saved config reruns the same job
    if trainer.is_world_process_zero():
        write_run_files(
            output_dir,
            metrics=metrics,
            report=report_table,
            arguments=(model_args, data_args, method_args, training_args),
        )
        write_card_and_images(
            output_dir, task=task, method=method, method_args=method_args, data=data, data_args=data_args,
            training_args=training_args, metrics=metrics, predictions=predictions, references=test.label_ids,
            log_history=trainer.state.log_history, base_model=resolved.hub_id, model_dir=resolved.path,
            dataset_on_hub=data.source.kind == "hub",
        )  # fmt: skip
        record_outputs(output_dir, written_before)  # what push uploads, --overwrite_output_dir deletes
    log(f"saved to {output_dir}")
    if push_to_hub and trainer.is_world_process_zero():
        push(
            output_dir,
            training_args.hub_model_id,
            private=bool(training_args.hub_private_repo),
            token=training_args.hub_token,
            dry_run=training_args.push_dry_run,
        )
    return FinetuneResult(
        metrics=metrics, output_dir=Path(output_dir), trainer=trainer, labels=data.labels, report=report
    )


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


def _load_processor_and_config(task, path: str, labels: LabelSpace, model_args: ModelArguments):
    """The processor and config, with loading failures turned into one actionable line."""
    try:
        processor = task.load_processor(path, model_args)
        return processor, task.load_config(path, labels, model_args, processor)
    except HftlError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        if not model_args.trust_remote_code and "trust_remote_code" in str(exc):
            raise ModelNotFoundError(  # the same line as for a distillation teacher (methods/distill/teacher.py)
                f"Model '{model_args.model}' needs code of its own to load (its auto_map), which hftl runs only "
                "when asked: pass --trust_remote_code if you trust its code."
            ) from None
        reason = first_line(exc)
        raise ModelNotFoundError(
            f"Could not load the config or tokenizer of '{model_args.model}': {reason[:200]}. "
            "A local directory needs config.json and the tokenizer files (save both with save_pretrained)."
        ) from None


def _resolve_auto_settings(task, method, data, data_args, training_args, processor, config) -> int | None:
    """Fill the options left on auto; print one line saying what was chosen and why."""
    chosen = []
    model_limit = task.max_length(processor, config)
    max_length = data_args.max_length
    if model_limit is None:  # the task has no sequence length
        pass
    elif max_length is None:
        tuned = data.tuned.get("max_length")
        max_length = tuned or model_limit
        chosen.append(
            f"max_length={max_length} ({'tuned for ' + data_args.dataset if tuned else 'the model maximum'})"
        )
    elif model_limit is not None and max_length > model_limit:
        chosen.append(f"max_length={model_limit} (the model maximum; {max_length} was asked)")
        max_length = model_limit
    if training_args.learning_rate is None:
        tuned = method.tuned_learning_rate(data_args.dataset, data.tuned)
        training_args.learning_rate = tuned or method.default_learning_rate
        why = f"tuned for {data_args.dataset}" if tuned else f"the {method.name} default"
        chosen.append(f"learning_rate={training_args.learning_rate:g} ({why})")
    if training_args.num_train_epochs is None:
        tuned = data.tuned.get("num_train_epochs")
        training_args.num_train_epochs = float(tuned or 3)
        chosen.append(
            f"num_train_epochs={training_args.num_train_epochs:g} ({'tuned for ' + data_args.dataset if tuned else 'default'})"
        )
    for option, fallback in task.auto_options.items():
        if getattr(data_args, option) is None:
            tuned = data.tuned.get(option)
            setattr(data_args, option, tuned or fallback)
            if tuned or fallback:
                chosen.append(
                    f"{option}={tuned or fallback} ({'tuned for ' + data_args.dataset if tuned else 'default'})"
                )
    if chosen:
        log("auto settings: " + ", ".join(chosen))
    data_args.max_length = max_length  # so the saved config reruns with the same length
    return max_length
