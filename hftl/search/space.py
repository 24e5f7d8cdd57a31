"""The ``--hp_search`` space: defaults around the configured values, changed by an ``--hp_space`` file."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..data.builtin import builtin_datasets
from ..errors import ConfigError
from ..methods import get_method
from ..options._collect import init_values
from ..options.config import HftlTrainingArguments
from ..options.parser import build_dataclass, did_you_mean
from ..tasks import get_task

__all__ = ["Dimension", "search_space", "read_space_file", "centers", "baseline", "owners", "trial_arguments"]

# options a space file can't vary: they define the search itself or where its trials go
FIXED_OPTIONS = (
    "output_dir", "hp_search", "n_trials", "hp_space", "method", "resume_from_checkpoint", "push_to_hub",
)  # fmt: skip


@dataclass(frozen=True)
class Dimension:
    """One searched option: categorical ``choices``, or a ``low``..``high`` range (log-uniform with ``log``)."""

    name: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    def suggest(self, trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def contains(self, value) -> bool:
        if self.choices is not None:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return self.low <= value <= self.high and (not self.integer or float(value).is_integer())

    def edge_values(self) -> tuple:
        return self.choices if self.choices is not None else (self.low, self.high)


def _with(defaults: tuple, value) -> tuple:
    """The default choices plus the user's own value, so trial 0 (the configuration as given) fits."""
    return defaults if value in defaults else (*defaults, value)


def owners(arguments: tuple) -> dict[str, Any]:
    """Option name -> the argument dataclass instance that holds it."""
    return {f.name: instance for instance in arguments for f in dataclasses.fields(instance) if f.init}


def centers(arguments: tuple) -> tuple[float, float]:
    """The learning rate and epochs a plain run would use: the user's, else the built-in dataset's tuned
    values for the method, else the method's default (as ``finetune`` resolves them on auto)."""
    model_args, data_args, method_args, training_args = arguments
    method = get_method(method_args.method)
    dataset = data_args.dataset or get_task(model_args.task).demo_dataset
    spec = builtin_datasets().get(dataset)
    tuned = spec.tuned if spec else {}
    lr = training_args.learning_rate or method.tuned_learning_rate(dataset, tuned)
    epochs = training_args.num_train_epochs or tuned.get("num_train_epochs") or 3
    return lr or method.default_learning_rate, float(epochs)


def search_space(arguments: tuple) -> list[Dimension]:
    """The default space around the configured (or auto) values, plus the method's own options."""
    _, _, method_args, training_args = arguments
    lr, epochs = centers(arguments)
    batch_sizes = _with((8, 16, 32), training_args.per_device_train_batch_size)
    space = [
        Dimension("learning_rate", low=lr / 10, high=lr * 10, log=True),
        Dimension("per_device_train_batch_size", choices=batch_sizes),
    ]
    by_epochs = training_args.max_steps <= 0  # --max_steps overrides epochs, and unfreezing counts epochs
    if by_epochs:
        space.append(Dimension("num_train_epochs", low=1, high=max(3, math.ceil(2 * epochs)), integer=True))
    held = owners(arguments)
    own = get_method(method_args.method)().search_space(method_args, training_args)
    for name, spec in own.items():  # widened to the configured value, so trial 0 fits
        value = getattr(held[name], name)
        if isinstance(spec, dict):
            low, high = spec["low"], spec["high"]
            if value is not None:
                low, high = min(low, value), max(high, value)
            integer = isinstance(low, int) and isinstance(high, int)
            space.append(Dimension(name, low=low, high=high, log=bool(spec.get("log")), integer=integer))
        else:
            space.append(Dimension(name, choices=_with(tuple(spec), value)))
    return space


def read_space_file(path: str, space: list[Dimension], known: list[str]) -> list[Dimension]:
    """``--hp_space`` YAML: ``option: [choices]`` | ``{low, high, log}`` | ``null`` (not searched);
    the other default dimensions stay."""
    file = Path(path)
    try:
        entries = yaml.safe_load(file.read_text()) if file.is_file() else None
    except yaml.YAMLError:
        raise ConfigError(f"--hp_space file '{path}' is not valid YAML; fix the syntax.") from None
    if not isinstance(entries, dict):
        raise ConfigError(
            f"--hp_space '{path}' must be a YAML file mapping option: [choices] or {{low: A, high: B}}."
        )
    dims = {dim.name: dim for dim in space}
    for name, spec in entries.items():
        if name not in known or name in FIXED_OPTIONS:
            what = f"'{name}' can't be searched" if name in FIXED_OPTIONS else f"Unknown option '{name}'"
            raise ConfigError(
                f"{what} in --hp_space '{path}'.{did_you_mean(str(name), known)} Keys are option names."
            )
        if spec is None:
            dims.pop(name, None)
        elif isinstance(spec, list) and spec:
            dims[name] = Dimension(name, choices=tuple(spec))
        elif isinstance(spec, dict) and {"low", "high"} <= set(spec) <= {"low", "high", "log"}:
            try:  # PyYAML reads 2e-5 as a string; take it anyway
                low, high = (v if isinstance(v, int) else float(v) for v in (spec["low"], spec["high"]))
            except (TypeError, ValueError):
                raise ConfigError(f"--hp_space '{path}': {name} needs numbers for low and high.") from None
            if not low < high or (spec.get("log") and low <= 0):
                raise ConfigError(
                    f"--hp_space '{path}': {name} needs low < high (and low > 0 with log: true)."
                )
            integer = isinstance(low, int) and isinstance(high, int)
            dims[name] = Dimension(name, low=low, high=high, log=bool(spec.get("log")), integer=integer)
        else:
            raise ConfigError(
                f"--hp_space '{path}': {name} must be a list of choices, {{low: A, high: B, log: true}} or "
                f"null (got {spec!r})."
            )
    return list(dims.values())


def baseline(arguments: tuple, space: list[Dimension]) -> dict:
    """Trial 0: the configuration as given (auto values as a plain run resolves them), where it fits."""
    held = owners(arguments)
    lr, epochs = centers(arguments)
    values = {}
    for dim in space:
        value = getattr(held[dim.name], dim.name)
        if value is None:
            value = {"learning_rate": lr, "num_train_epochs": epochs}.get(dim.name)
        if dim.contains(value):
            values[dim.name] = int(value) if dim.integer else value
    return values


def trial_arguments(arguments: tuple, params: dict) -> tuple:
    """Fresh argument dataclasses with ``params`` applied, validated as if the user had given them."""
    built = []
    for instance in arguments:
        values = init_values(instance)
        if isinstance(instance, HftlTrainingArguments) and instance.auto_dataloader_workers:
            values["dataloader_num_workers"] = None  # __post_init__ put 0 there meanwhile; keep it on auto
        own = {name: value for name, value in params.items() if name in values}
        # a run resolves its own copies (hftl.plan), so an unchanged instance is shared as it is
        built.append(build_dataclass(type(instance), {**values, **own}) if own else instance)
    return tuple(built)
