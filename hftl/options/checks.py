"""Range checks for every numeric option, from one table (field -> rule), and type checks for values
that come from YAML or ``finetune(**kwargs)`` rather than through argparse.

Stock ``TrainingArguments`` accepts a batch size of 0, a NaN learning rate or a negative seed; they only
fail once the model is built, as a traceback from torch or numpy. Here each is one line, raised from the
dataclasses' ``__post_init__`` (so every entry point checks it) before anything is loaded. The message
follows peft's config checks: the option, what it must be, what it got.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import importlib.util
import math
import numbers
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..errors import ConfigError

__all__ = [
    "OPTION_RULES",
    "Rule",
    "check_options",
    "coerce_value",
    "check_room_for_text",
    "check_long_text",
    "check_report_to",
    "default_chunk_stride",
    "TRACKERS",
]


@dataclass(frozen=True)
class Rule:
    """What an option's value must be.

    Args:
        allowed: The allowed values in words, completing "--name must be ...".
        accepts: Whether a (finite) number is allowed.
        whole: Whole numbers only.
        unset: What leaving the option unset does, where it can be (``" to keep every checkpoint"``).
    """

    allowed: str
    accepts: Callable[[float], bool]
    whole: bool = False
    unset: str = ""

    def named(self, allowed: str, unset: str = "") -> Rule:
        """The same rule, worded for one option (``a positive rank``; ``unset``: what leaving it unset does)."""
        return dataclasses.replace(self, allowed=allowed, unset=unset)


def _steps(low_ok: bool) -> Callable[[float], bool]:
    # TrainingArguments reads a value below 1 as a fraction of the run and truncates nothing above it
    return lambda v: (0 <= v if low_ok else 0 < v) and (v < 1 or v == int(v))


AT_LEAST_1 = Rule("at least 1", lambda v: v >= 1, whole=True)
AT_LEAST_0 = Rule("at least 0", lambda v: v >= 0, whole=True)
ALL_OR_AT_MOST = AT_LEAST_1.named("at least 1", unset=" to use all")
SEED = Rule("a whole number from 0 to 4294967295", lambda v: 0 <= v < 2**32, whole=True)  # numpy's range
POSITIVE = Rule("positive", lambda v: v > 0)
NON_NEGATIVE = Rule("0 or more", lambda v: v >= 0)
PROBABILITY = Rule("a probability in [0, 1)", lambda v: 0 <= v < 1)
FRACTION = Rule("a fraction between 0 and 1, both excluded", lambda v: 0 < v < 1)
SHARE = Rule("in (0, 1]", lambda v: 0 < v <= 1)
WEIGHT = Rule("in [0, 1]", lambda v: 0 <= v <= 1)
STEPS = Rule("a whole number of steps >= 1, or a fraction of the run in (0, 1)", _steps(low_ok=False))
WARMUP = Rule("a whole number of steps >= 0, or a fraction of the run in [0, 1)", _steps(low_ok=True))

# every int/float field of ModelArguments, DataArguments, MethodArguments and HftlTrainingArguments
# (tests/test_parser.py fails when a new numeric field has no rule); None passes where the field allows it
OPTION_RULES: dict[str, Rule] = {
    # DataArguments
    "image_size": AT_LEAST_1.named("a positive number of pixels, at least 1"),
    "max_bad_image_fraction": WEIGHT,
    "max_length": AT_LEAST_1.named("a positive number of tokens, at least 1"),
    "validation_split_size": FRACTION,
    "test_split_size": FRACTION,
    "split_seed": SEED,
    "label_fraction": SHARE,
    "samples_per_class": ALL_OR_AT_MOST,
    "max_train_samples": ALL_OR_AT_MOST,
    "max_eval_samples": ALL_OR_AT_MOST,
    "max_test_samples": ALL_OR_AT_MOST,
    "label_scan_rows": AT_LEAST_1,
    "shuffle_buffer": AT_LEAST_1,
    "chunk_stride": AT_LEAST_0.named(
        "a number of tokens, at least 0", unset=" for a quarter of --max_length"
    ),
    "max_chunks": ALL_OR_AT_MOST.named("at least 1", unset=" to keep every window"),
    # MethodArguments
    "student_layers": AT_LEAST_1,
    "distill_alpha": WEIGHT,
    "distill_temperature": POSITIVE,
    "distill_hidden_weight": NON_NEGATIVE,
    "lora_r": AT_LEAST_1.named("a positive rank, at least 1"),
    "lora_alpha": AT_LEAST_1,
    "lora_dropout": PROBABILITY,
    # TechniqueOptions
    "unfreeze_interval": POSITIVE.named("a positive number of epochs"),
    "layer_decay": SHARE.named("in (0, 1], e.g. 0.75"),
    "head_learning_rate": POSITIVE,
    "dropout": PROBABILITY,
    "early_stopping_patience": AT_LEAST_1.named("at least 1 evaluation"),
    "early_stopping_threshold": NON_NEGATIVE,
    "find_lr_steps": Rule("at least 10", lambda v: v >= 10, whole=True),
    "n_trials": AT_LEAST_1,
    # TrainingArguments
    "per_device_train_batch_size": AT_LEAST_1,
    "per_device_eval_batch_size": AT_LEAST_1,
    "gradient_accumulation_steps": AT_LEAST_1,
    "eval_accumulation_steps": AT_LEAST_1,
    "learning_rate": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "adam_beta1": PROBABILITY.named("in [0, 1)"),
    "adam_beta2": PROBABILITY.named("in [0, 1)"),
    "adam_epsilon": POSITIVE,
    "max_grad_norm": NON_NEGATIVE.named("0 (no clipping) or more"),
    "num_train_epochs": POSITIVE,
    "max_steps": Rule(
        "a whole number of steps >= 1, or -1 to train for --num_train_epochs",
        lambda v: v == -1 or v >= 1,
        whole=True,
    ),
    "warmup_steps": WARMUP,
    "label_smoothing_factor": PROBABILITY.named("in [0, 1), e.g. 0.1"),
    "neftune_noise_alpha": POSITIVE,
    "torch_empty_cache_steps": AT_LEAST_1,
    "logging_steps": STEPS,
    "eval_steps": STEPS,
    "eval_delay": NON_NEGATIVE,
    "save_steps": STEPS,
    "save_total_limit": AT_LEAST_1.named("at least 1", unset=" to keep every checkpoint"),
    "seed": SEED,
    "data_seed": SEED,
    "dataloader_num_workers": AT_LEAST_0,
    "dataloader_prefetch_factor": AT_LEAST_1,
    "ddp_bucket_cap_mb": AT_LEAST_1,
    "ddp_timeout": AT_LEAST_1.named("a positive number of seconds"),
    "local_rank": Rule("-1 or a process index", lambda v: v >= -1, whole=True),
}

# str fields that also take a list (joined with commas by their dataclass): field -> what an item may be
_LIST_OK: dict[str, tuple[type, ...]] = {
    "text_column": (str,),
    "lora_target_modules": (str,),
    # [1, 1, 4] as docs/techniques.md shows; parse_weight_list checks the numbers
    "class_weights": (numbers.Real, str),
}


@cache
def _kinds(cls: type) -> dict[str, tuple[set, bool]]:
    """Field name -> (the scalar types it takes: some of int, float, bool, str; empty when it takes
    containers too, so it is left to the dataclass), whether None is allowed."""
    hints = typing.get_type_hints(cls)
    kinds = {}
    for field in dataclasses.fields(cls):
        hint = hints.get(field.name, Any)
        members = (
            typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        )
        optional = type(None) in members
        named = [str if isinstance(m, type) and issubclass(m, enum.Enum) else m for m in members]
        scalars = {m for m in named if m is not type(None)}
        if not scalars <= {int, float, bool, str}:  # dict, list, Literal, ...: the dataclass decides
            scalars = set()
        kinds[field.name] = (scalars, optional)
    return kinds


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _number_error(name: str, value: Any, whole: bool) -> str | None:
    """Why ``value`` can't be the number ``--name`` takes, or None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"--{name} must be a {'whole number' if whole else 'number'} (got {_shown(value)})."
    if not math.isfinite(value):
        return f"--{name} must be a finite number (got {value})."
    if whole and value != int(value):
        return f"--{name} must be a whole number (got {value})."
    return None


def check_options(instance) -> None:
    """Refuse any numeric option of ``instance`` (one of hftl's argument dataclasses) outside its rule."""
    kinds = _kinds(type(instance))
    for name, (scalars, optional) in kinds.items():
        rule = OPTION_RULES.get(name)
        if rule is None:
            continue
        value = getattr(instance, name, None)
        if value is None and optional:
            continue
        problem = _number_error(name, value, whole=rule.whole or float not in scalars)
        if problem is None and not rule.accepts(value):
            unset = f", or left unset{rule.unset}" if optional else ""
            problem = f"--{name} must be {rule.allowed} (got {_shown(value)}){unset}."
        if problem:
            raise ConfigError(problem)
    if "report_to" in kinds:  # TrainingArguments: before stock __post_init__ reads it
        instance.report_to = check_report_to(instance.report_to)


def coerce_value(cls: type, name: str, value: Any, where: str) -> Any:
    """``value`` for field ``name`` of ``cls`` as the field's type, converting text the way the command
    line would (``'2e-5'``, which PyYAML leaves a string, becomes 2e-05); a value of the wrong shape is
    refused in one line starting with ``where`` (the config file, or ``finetune()``)."""
    scalars, optional = _kinds(cls)[name]
    if not scalars or (value is None and optional):
        return value
    if (
        name in _LIST_OK
        and isinstance(value, (list, tuple))
        and all(isinstance(item, _LIST_OK[name]) and not isinstance(item, bool) for item in value)
    ):
        return value
    if isinstance(value, enum.Enum) and str in scalars:
        return value
    if isinstance(value, os.PathLike) and str in scalars:  # finetune(output_dir=Path(...))
        return os.fspath(value)
    if int in scalars or float in scalars:
        whole = float not in scalars
        if isinstance(value, str):
            try:
                value = int(value) if whole else float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, numbers.Real):  # ranges: check_options
            kind = "a whole number" if whole else "a number"
            if isinstance(value, str) and not whole:
                kind += " (write floats as 2.0e-5)"
            raise ConfigError(f"{where}: {name} must be {kind}, not {_shown(value)}.")
        return int(value) if isinstance(value, numbers.Integral) else float(value)  # numpy scalars too
    if bool in scalars:
        if not isinstance(value, (bool, str)):
            raise ConfigError(f"{where}: {name} must be true or false, not {_shown(value)}.")
        return value
    # YAML reads an unquoted no/yes/off/on as a boolean, and 1.10 as the float 1.1: the text is lost
    if isinstance(value, (bool, float)):
        example = {False: "no", True: "yes"}.get(value, "1.10")
        raise ConfigError(
            f"{where}: {name} must be text, not {value}; quote the value (e.g. '{name}: \"{example}\"')."
        )
    if isinstance(value, int):  # a number used as a name (a dataset config such as 2019)
        return str(value)
    if not isinstance(value, str):
        listed = {"class_weights": " (a mode, or a list of numbers)"}.get(
            name, " (a name, or a list of names)" if name in _LIST_OK else ""
        )
        raise ConfigError(f"{where}: {name} must be a single value{listed}, not {_shown(value)}.")
    return value


def check_room_for_text(processor, max_length: int | None, input_columns: list[str]) -> None:
    """Refuse a ``--max_length`` that the tokenizer's special tokens fill on their own (truncation would
    leave ``[CLS] [SEP]`` and no text, or not truncate at all)."""
    count = getattr(processor, "num_special_tokens_to_add", None)
    if max_length is None or count is None:
        return
    special = count(pair=len(input_columns) > 1)
    if max_length <= special:
        raise ConfigError(
            f"--max_length {max_length} leaves no room for text: the tokenizer adds {special} special tokens "
            f"to each example; give at least {special + 1}, or leave it unset for the model maximum."
        )


# --report_to: the trackers hftl sends its config and test metrics to (Trainer's integrations log the
# rest) -> the modules any of which makes it work, and what to install
TRACKERS = {
    "tensorboard": (("tensorboard", "tensorboardX"), "pip install 'hftl[trackers]'"),
    "trackio": (("trackio",), "pip install 'hftl[trackers]'"),
    "mlflow": (("mlflow",), "pip install mlflow"),
    "wandb": (("wandb",), "pip install wandb"),
}


def check_report_to(value: Any) -> list[str]:
    """``--report_to`` as a list of tracker names (``none``, ``[none]`` and unset: ``[]``); a name that is
    not a tracker, ``all`` (whatever happens to be installed) or a tracker not installed is one line.

    Args:
        value: The option as given: a name, comma-separated names, or a list of names.

    Example:
        >>> check_report_to("none")
        []
    """
    items = value if isinstance(value, (list, tuple)) else [] if value is None else [value]
    names = []
    for item in items:
        for name in str(item).split(","):
            name = name.strip().lower()
            # kubeflow: stock __post_init__ adds it inside a Kubeflow TrainJob (rebuilt arguments carry it)
            if name and name not in ("none", "kubeflow") and name not in names:
                names.append(name)
    choices = ", ".join(TRACKERS)
    for name in names:
        if name == "all":
            raise ConfigError(
                f"--report_to all would log to whichever trackers happen to be installed; name them ({choices})."
            )
        if name not in TRACKERS:
            close = difflib.get_close_matches(name, TRACKERS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"--report_to {name} is not a tracker hftl logs to; give {choices} (several: comma-separated) "
                f"or none.{hint}"
            )
        modules, install = TRACKERS[name]
        if not any(importlib.util.find_spec(module) for module in modules):
            raise ConfigError(f"--report_to {name} needs {modules[0]}, which is not installed: {install}")
    return names


LONG_TEXT_STRATEGIES = ("truncate", "head_tail", "chunk")


def default_chunk_stride(max_length: int) -> int:
    """``--chunk_stride`` on auto: consecutive windows share a quarter of ``max_length``."""
    return max_length // 4


def check_long_text(data_args, *, task, method, processor, config, max_length, input_columns) -> None:
    """Refuse a ``--long_text`` setting this run can't apply, in one line, at plan time: a value outside the
    choices, chunk options without chunk, a task that doesn't read whole texts (``task.takes_long_text``),
    a sentence pair, a slow tokenizer, a stride that fills the window, a method whose Trainer doesn't pool
    windows (``method.pools_document_windows``), max pooling of regression outputs."""
    strategy = data_args.long_text
    if strategy not in LONG_TEXT_STRATEGIES:
        raise ConfigError(f"--long_text must be one of {', '.join(LONG_TEXT_STRATEGIES)} (got {strategy!r}).")
    if data_args.chunk_aggregation not in ("mean", "max"):
        raise ConfigError(f"--chunk_aggregation must be mean or max (got {data_args.chunk_aggregation!r}).")
    chunk_only = [
        f"--{name}"
        for name, unset in (("chunk_stride", None), ("max_chunks", None), ("chunk_aggregation", "mean"))
        if getattr(data_args, name) != unset
    ]
    if strategy != "chunk" and chunk_only:
        verb = "apply" if len(chunk_only) > 1 else "applies"
        raise ConfigError(
            f"{', '.join(chunk_only)} {verb} only with --long_text chunk (got --long_text {strategy})."
        )
    if strategy == "truncate":
        return
    if not getattr(task, "takes_long_text", False):
        raise ConfigError(
            f"--long_text {strategy} works for whole-text tasks (text classification, text regression), not "
            f"{task.name}; leave it at truncate."
        )
    if len(input_columns) > 1:
        raise ConfigError(
            f"--long_text {strategy} takes one text column, not a pair ({', '.join(input_columns)}); use "
            "truncate for sentence pairs."
        )
    if not getattr(processor, "is_fast", False):
        raise ConfigError(
            f"--long_text {strategy} needs a fast tokenizer (its overflow windows); {type(processor).__name__} "
            "is not one: use truncate, or a checkpoint with a tokenizer.json."
        )
    if strategy != "chunk":
        return
    room = max_length - processor.num_special_tokens_to_add(pair=False)
    stride = (
        data_args.chunk_stride if data_args.chunk_stride is not None else default_chunk_stride(max_length)
    )
    if stride >= room:
        raise ConfigError(
            f"--chunk_stride {stride} must be less than the {room} text tokens a window of --max_length "
            f"{max_length} holds; give a smaller stride."
        )
    if not getattr(method, "pools_document_windows", True):
        raise ConfigError(
            f"--long_text chunk pools window logits in hftl's Trainer, which --method {method.name} replaces "
            "with its own loss; use --long_text head_tail or truncate with it."
        )
    if data_args.chunk_aggregation == "max" and getattr(config, "problem_type", None) == "regression":
        raise ConfigError(
            "--chunk_aggregation max takes each output's largest window value, which biases a regression "
            "upwards; use mean."
        )
