"""The method registry: classes registered by name, one instance made per run."""

from __future__ import annotations

import functools
import inspect

from .._registry import Registry
from ..errors import ConfigError
from ..options.config import METHOD_CHOICES
from ..run.sharding import sharding
from ._base import Method

__all__ = [
    "register_method",
    "get_method",
    "method_names",
    "default_method",
    "methods_with",
    "method_help",
    "check_method_switches",
    "check_sharded_method",
]

_METHODS: Registry[type[Method]] = Registry("method")
_DEFAULT: list[str] = []  # the name --method defaults to (full fine-tuning, registered with default=True)


def register_method(method: type[Method], *, default: bool = False) -> type[Method]:
    """Register the :class:`Method` subclass ``method`` under ``method.name`` (peft's
    ``register_peft_method`` shape); a second registration of the same name is refused. ``default``:
    the method ``--method`` defaults to (one only). Methods written for earlier versions still register:
    an instance registers its class, and a ``prepare`` without the ``task`` keyword is called without it."""
    if isinstance(method, Method):  # the instance form of earlier versions: its class is what runs
        method = type(method)
    if not (isinstance(method, type) and issubclass(method, Method)):
        raise TypeError(f"register_method takes a Method subclass, not {method!r}.")
    if not _takes_task(method.prepare):  # written for prepare(model, head, method_args, base_model_id)
        method.prepare = _without_task(method.prepare)
    if default and _DEFAULT:
        raise ValueError(f"The default method is already '{_DEFAULT[0]}'.")
    _METHODS.register(method.name, method)
    if default:
        _DEFAULT.append(method.name)
    return method


def _takes_task(prepare) -> bool:
    parameters = inspect.signature(prepare).parameters.values()
    return any(p.name == "task" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _without_task(prepare):
    @functools.wraps(prepare)
    def prepare_ignoring_task(self, model, head, method_args, base_model_id, *, task=None):
        return prepare(self, model, head, method_args, base_model_id)

    return prepare_ignoring_task


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name``, or a ConfigError listing the known ones."""
    return _METHODS.get(name)


def method_names() -> list[str]:
    """The registered method names, in registration order."""
    return _METHODS.names()


def default_method() -> str:
    return _DEFAULT[0]


def methods_with(flag: str) -> list[str]:
    """Names of the registered methods whose class sets ``flag`` (``trains_from_scratch``, ...)."""
    return [name for name, method in _METHODS.as_dict().items() if getattr(method, flag)]


def method_help() -> str:
    """The ``--method`` help line: every registered method with its few words."""

    def entry(method: type[Method]) -> str:
        notes = [method.help] if method.help else []
        notes += [f"needs --{option}" for option in method.required_options]
        return f"{method.name} ({'; '.join(notes)})" if notes else method.name

    entries = [entry(get_method(name)) for name in method_names()]
    return f"Adaptation method: {', '.join(entries)}."


def default_learning_rates() -> str:
    """Each registered method's default learning rate, for the ``--learning_rate`` help."""
    return ", ".join(f"{name} {_short(get_method(name).default_learning_rate)}" for name in method_names())


def _short(rate: float) -> str:
    """``5e-5`` (as the docs write rates), not ``5e-05`` or ``0.005``."""
    mantissa, exponent = f"{rate:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def _either(names: list[str]) -> str:
    return " or ".join(sorted(names))


def check_sharded_method(method: Method, training_args) -> None:
    """Pre-flight, first: refuse a method that can't run under the run's sharding (flag or accelerate config)."""
    sharded = sharding(training_args)
    if sharded and not method.shards:
        raise ConfigError(
            f"--method {method.name} doesn't run under {sharded} yet ({method.unsharded_reason}); only "
            f"--method {_either(methods_with('shards'))} do. Train it with DDP instead (accelerate launch "
            "--config_file recipes/accelerate/multi_gpu.yaml)."
        )


def check_method_switches(method: Method, model_args, method_args) -> None:
    """Pre-flight: refuse switches the method doesn't support, naming the methods that do."""
    if model_args.from_scratch and not method.trains_from_scratch:
        raise ConfigError(
            f"--from_scratch trains random weights, which only --method "
            f"{_either(methods_with('trains_from_scratch'))} can do (got {method.name})."
        )
    if method_args.student_layers and not method.takes_student_layers:
        raise ConfigError(
            f"--student_layers works with --method {_either(methods_with('takes_student_layers'))}, "
            f"not {method.name}."
        )


# --method's names, default and help come from here; hftl.options imports no method
METHOD_CHOICES.connect(default=default_method, help=method_help, learning_rates=default_learning_rates)
