"""Planning a run: every check and decision that needs no model weights, resolved once into a frozen
:class:`RunPlan` that building, training, evaluating, saving and pushing then read.

The caller's argument objects are never changed: the plan resolves copies of them (the model and dataset
a task defaults to, the output folder, auto settings, what the task adjusts), and those copies are what the
Trainer gets and what the saved config records.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from ._log import log
from .data import LabelSpace, PreparedData, prepare_data
from .data.streaming import EVALUATIONS, check_streaming
from .errors import ConfigError, HftlError, ModelNotFoundError, first_line
from .hub.publish import check_run_can_push
from .methods import Method, check_method_switches, check_sharded_method, get_method, methods_with
from .options.checks import check_long_text, check_room_for_text
from .options.config import DataArguments, HftlTrainingArguments, MethodArguments, ModelArguments
from .resolve import ResolvedModel, resolve_model
from .run.checkpoints import resume_checkpoint
from .run.identity import check_same_run, run_identity
from .run.output_dir import check_free_space, prepare_output_dir
from .tasks import Task, get_task
from .tasks._embedding_pooling import checkpoint_max_length, plan_pooling
from .techniques.budget import too_short, training_budget
from .techniques.dropout import override_dropout
from .techniques.early_stopping import check_best_metric
from .techniques.param_groups import check_layer_options

__all__ = ["AutoSetting", "RunPlan", "plan_run"]


@dataclass(frozen=True)
class AutoSetting:
    """An option left on auto and the value chosen for it, with the reason (``tuned for bbc-news``)."""

    option: str
    value: Any
    reason: str

    def __str__(self) -> str:
        value = f"{self.value:g}" if isinstance(self.value, float) else self.value
        return f"{self.option}={value} ({self.reason})"


@dataclass(frozen=True)
class RunPlan:
    """One fine-tuning run, decided: what to train, on what, how, and where the results go.

    Args:
        model_args: The model options as resolved for this run (a copy: the caller's object stays as given).
        data_args: The data options, resolved likewise (``max_length`` and the task's auto options filled in).
        method_args: The method options, resolved likewise.
        training_args: The training options, resolved likewise (auto learning rate and epochs filled in);
            ``push_to_hub`` is off here: hftl pushes at the end.
        task: The task, which owns labels, metrics, report and card.
        method: This run's own instance of the method.
        model: Where the pretrained checkpoint was found (path, Hub id, how it was found).
        data: The prepared splits, label space, input columns and where the data came from.
        processor: The checkpoint's tokenizer or image processor.
        config: The checkpoint's config with this run's labels (and dropout override).
        output_dir: The folder the run writes to (checked: nothing of the user's is overwritten).
        resume: The checkpoint to resume from, or None.
        identity: The run's identity (model, task, method, labels, data), recorded in its checkpoints.
        class_loss: The class-weighted / smoothed loss, or None for the model's own loss.
        max_length: The input length (None where the task has none).
        auto_settings: What was chosen for options left on auto, and why.
        push_to_hub: Whether the user asked for a push at the end.
        learning_rate_given: Whether the learning rate was set by the user (else ``--find_lr`` may replace it).
        pooling: The sentence-embedding pooling folded into the model (``"mean"``, ``"cls"``) or None.
    """

    model_args: ModelArguments
    data_args: DataArguments
    method_args: MethodArguments
    training_args: HftlTrainingArguments
    task: Task
    method: Method
    model: ResolvedModel
    data: PreparedData
    processor: Any
    config: Any
    output_dir: str
    resume: str | None
    identity: dict
    class_loss: Any
    max_length: int | None
    auto_settings: tuple[AutoSetting, ...]
    push_to_hub: bool
    learning_rate_given: bool
    pooling: str | None = None

    @property
    def arguments(self) -> tuple:
        return self.model_args, self.data_args, self.method_args, self.training_args


def plan_run(
    model_args: ModelArguments,
    data_args: DataArguments,
    method_args: MethodArguments,
    training_args: HftlTrainingArguments,
) -> RunPlan:
    """Check everything that can be checked before any weights load, and resolve the run (see :class:`RunPlan`)."""
    # the plan's own copies: resolving fills them in, the caller's objects stay as given
    model_args, data_args, method_args, training_args = (
        copy.deepcopy(arguments) for arguments in (model_args, data_args, method_args, training_args)
    )
    # --- what runs: task, method, model, data -----------------------------------------------------
    task = get_task(model_args.task)
    method = get_method(method_args.method)()  # one instance per run: a method may hold state
    check_sharded_method(method, training_args)  # FSDP / DeepSpeed, by flag or accelerate config
    method.setup(model_args, data_args, method_args, task)
    model_args.model = model_args.model or task.demo_model
    data_args.dataset = data_args.dataset or task.demo_dataset
    check_method_switches(method, model_args, method_args)  # --from_scratch, --student_layers
    if data_args.streaming:
        check_streaming(task, method, data_args, training_args)  # --max_steps, and what needs every row
    if model_args.weights and task.modality != "image":
        raise ConfigError("--weights loads a timm architecture, which only --task image-classification uses.")
    push_to_hub = training_args.push_to_hub
    if push_to_hub:  # before any compute: a repo id, and a reachable Hub and a token unless a dry run
        check_run_can_push(training_args)
    training_args.push_to_hub = False  # Trainer would create the repo at once and push pickles
    # --- where it goes: resume, output folder -----------------------------------------------------
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
    training_args.output_dir = output_dir  # a fresh outputs/<timestamp>-<method> when none was given
    resolved = resolve_model(model_args.model, model_args.revision, model_args.weights)
    check_free_space(output_dir, resolved.path)  # a full disk would only show at the first save
    log(f"model: {model_args.model} ({resolved.source})")
    data = prepare_data(data_args, task, label_order=method.label_order)
    class_loss = task.plan_loss(training_args, data.splits["train"], data.labels)  # prints per-class counts
    check_best_metric(training_args, task.metric_names(data.labels), task.label_kind(data.labels))
    identity = run_identity(model_args.model, task.name, method.name, data.labels.names, data.splits["train"])
    if resume is not None:
        check_same_run(resume, identity, training_args.allow_changed_resume)  # the checkpoint's own run
    # --- the model's processor and config, auto settings, checks on a weightless skeleton ----------
    processor, config = _load_processor_and_config(task, resolved.path, data.labels, model_args)
    override_dropout(config, training_args.dropout)  # the config the model is built from
    learning_rate_given = training_args.learning_rate is not None  # else --find_lr's suggestion is used
    auto = _auto_settings(task, method, data, data_args, training_args, processor, config, resolved.path)
    for setting in auto:
        owner = training_args if setting.option in ("learning_rate", "num_train_epochs") else data_args
        setattr(owner, setting.option, setting.value)
    if shown := [str(setting) for setting in auto if setting.reason]:
        log("auto settings: " + ", ".join(shown))
    _warn_if_too_short(task, method, data, training_args)
    if (
        data.validation_is_train
        and training_args.eval_strategy == "epoch"
        and not training_args.load_best_model_at_end
    ):
        # scoring the training rows each epoch tells nothing; they are scored once at the end
        training_args.eval_strategy = IntervalStrategy.NO
        log("eval_strategy no: the validation split is the training rows, scored once after training")
    if data.train_stream is not None:
        _stream_cadence(training_args)
    max_length = data_args.max_length
    check_room_for_text(processor, max_length, data.input_columns)  # needs the tokenizer's special tokens
    check_long_text(data_args, task=task, method=method, processor=processor, config=config,
                    max_length=max_length, input_columns=data.input_columns)  # fmt: skip
    skeleton = task.model_skeleton(config, model_args)
    task.check_weights(resolved.path, skeleton, model_args)  # a backbone that doesn't fit its config
    pooling, why = plan_pooling(
        task, method, model_args, method_args, resolved.path, skeleton, tuned=data.tuned.get("pooling")
    )
    model_args.pooling = pooling or "model"  # the saved config reruns with the same pooling
    if why:
        log(f"pooling: {why}")
    method.preflight(skeleton, method_args, processor=processor, data_args=data_args, task=task)
    check_layer_options(skeleton, training_args, method.name, methods_with("unfreezes"))  # --layer_decay, ...
    task.adjust_training_args(training_args)  # e.g. keep the raw image column for on-the-fly transforms
    return RunPlan(
        model_args=model_args, data_args=data_args, method_args=method_args, training_args=training_args,
        task=task, method=method, model=resolved, data=data, processor=processor, config=config,
        output_dir=output_dir, resume=resume, identity=identity, class_loss=class_loss, max_length=max_length,
        auto_settings=auto, push_to_hub=push_to_hub, learning_rate_given=learning_rate_given, pooling=pooling,
    )  # fmt: skip


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


def _auto_settings(
    task, method, data, data_args, training_args, processor, config, path: str
) -> tuple[AutoSetting, ...]:
    """Values for the options left on auto, each with its reason (a resolved max_length is always
    recorded, so the saved config reruns with the same length; its reason is empty when it was given)."""
    chosen = []
    tuned_for = f"tuned for {data_args.dataset}"
    model_limit = task.max_length(processor, config)
    max_length = data_args.max_length
    if model_limit is None:  # the task has no sequence length
        pass
    elif max_length is None:
        tuned, declared = data.tuned.get("max_length"), checkpoint_max_length(path)
        if tuned:
            chosen.append(AutoSetting("max_length", tuned, tuned_for))
        elif declared and declared < model_limit:
            chosen.append(
                AutoSetting("max_length", declared, "the sentence-transformers checkpoint's max_seq_length")
            )
        else:
            chosen.append(AutoSetting("max_length", model_limit, "the model maximum"))
    elif max_length > model_limit:
        chosen.append(AutoSetting("max_length", model_limit, f"the model maximum; {max_length} was asked"))
    if training_args.learning_rate is None:
        tuned = method.tuned_learning_rate(data_args.dataset, data.tuned)
        why = tuned_for if tuned else f"the {method.name} default"
        chosen.append(AutoSetting("learning_rate", tuned or method.default_learning_rate, why))
    if training_args.num_train_epochs is None:
        tuned = data.tuned.get("num_train_epochs")
        budget = training_budget(_training_rows(task, method, data), _effective_batch(training_args))
        if training_args.max_steps > 0:  # --max_steps decides the length; epochs are only recorded
            chosen.append(AutoSetting("num_train_epochs", float(tuned or 3), ""))
        else:
            chosen.append(AutoSetting("num_train_epochs", float(tuned) if tuned else budget.epochs,
                                      tuned_for if tuned else budget.reason))  # fmt: skip
    for option, fallback in task.auto_options.items():
        if getattr(data_args, option) is None:
            tuned = data.tuned.get(option)
            value = tuned or fallback
            chosen.append(AutoSetting(option, value, (tuned_for if tuned else "default") if value else ""))
    return tuple(chosen)


def _stream_cadence(training_args) -> None:
    """A stream has no epochs that end within --max_steps: evaluate and save every tenth of the run instead
    (a checkpoint to resume from), and let every process read its own share of the stream."""
    every = max(1, training_args.max_steps // EVALUATIONS)
    if training_args.eval_strategy == IntervalStrategy.EPOCH:
        training_args.eval_strategy, training_args.eval_steps = IntervalStrategy.STEPS, every
        log(f"streaming: evaluating every {every} steps (a stream's epoch has no known end)")
    if training_args.save_strategy == SaveStrategy.EPOCH:
        training_args.save_strategy, training_args.save_steps = (
            SaveStrategy.STEPS,
            training_args.eval_steps or every,
        )
    # Accelerate's default for a stream is process 0 reading every batch and sending each process its
    # share; without it each process reads its own files, or its own batches of one file
    training_args.accelerator_config.dispatch_batches = False


def _training_rows(task, method, data) -> int:
    """The rows one epoch trains on (a method that learns from unlabelled rows trains on those too)."""
    rows = len(data.splits["train"])
    if data.unlabelled is not None and method.learns_from_unlabelled(task):
        rows += len(data.unlabelled)
    return rows


def _effective_batch(training_args) -> int:
    return max(1, training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
               * max(1, training_args.world_size))  # fmt: skip


def _warn_if_too_short(task, method, data, training_args) -> None:
    """One line when the run's optimizer steps (as given or resolved) are too few to learn anything."""
    if training_args.max_steps > 0:
        steps = training_args.max_steps
    else:
        per_epoch = math.ceil(_training_rows(task, method, data) / _effective_batch(training_args))
        steps = math.ceil(training_args.num_train_epochs * per_epoch)
    if warning := too_short(steps):
        log(warning)
