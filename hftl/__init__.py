"""hftl: transfer learning on the Hugging Face stack, offline-first.

Example:
    >>> from hftl import finetune
    >>> result = finetune(dataset="bbc-news", output_dir="outputs/minilm-bbc")
    >>> result.metrics["test_accuracy"]
    >>> from hftl import predict
    >>> predict("outputs/minilm-bbc", "new_articles.csv", output="predictions.csv")

The public names load on first use (PEP 562), so the ``hftl`` command answers ``--help`` without
importing torch; ``from hftl import finetune`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it; the rest of __all__ is the public face, hftl.api
_API = "hftl.api"
_EXPORTS = {
    "run_cli": "hftl.cli",
    "evaluate": "hftl.inference",
    "predict": "hftl.inference",
    "load_saved_model": "hftl.inference",
    "export_model": "hftl.export",
    "CheckpointError": "hftl.errors",
    "ConfigError": "hftl.errors",
    "DataError": "hftl.errors",
    "DatasetNotFoundError": "hftl.errors",
    "HftlError": "hftl.errors",
    "ModelNotFoundError": "hftl.errors",
    "TrainingStopped": "hftl.errors",
    "push": "hftl.hub",
    "DataArguments": "hftl.options.config",
    "HftlTrainingArguments": "hftl.options.config",
    "MethodArguments": "hftl.options.config",
    "ModelArguments": "hftl.options.config",
    "HftlArgumentParser": "hftl.options.parser",
    "make_parser": "hftl.options.parser",
}

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataArguments",
    "DataError",
    "DatasetNotFoundError",
    "FinetuneResult",
    "HftlArgumentParser",
    "HftlError",
    "HftlTrainingArguments",
    "MethodArguments",
    "ModelArguments",
    "ModelNotFoundError",
    "TrainingStopped",
    "distill",
    "evaluate",
    "export_model",
    "finetune",
    "load_saved_model",
    "make_parser",
    "predict",
    "push",
    "run_cli",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name, _API if name in __all__ else None)
    if module is None:
        raise AttributeError(f"module 'hftl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what type checkers and IDEs see
    from .api import FinetuneResult, distill, finetune
    from .cli import run_cli
    from .errors import (
        CheckpointError,
        ConfigError,
        DataError,
        DatasetNotFoundError,
        HftlError,
        ModelNotFoundError,
        TrainingStopped,
    )
    from .export import export_model
    from .hub import push
    from .inference import evaluate, load_saved_model, predict
    from .options.config import DataArguments, HftlTrainingArguments, MethodArguments, ModelArguments
    from .options.parser import HftlArgumentParser, make_parser
