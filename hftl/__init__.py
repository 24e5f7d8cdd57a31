"""hftl: transfer learning on the Hugging Face stack, offline-first.

Example:
    >>> from hftl import finetune
    >>> result = finetune(dataset="bbc-news", output_dir="outputs/minilm-bbc")
    >>> result.metrics["test_accuracy"]
"""

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
from .hub import push
from .options.config import DataArguments, HftlTrainingArguments, MethodArguments, ModelArguments
from .options.parser import HftlArgumentParser, make_parser

__version__ = "0.1.0"

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
    "finetune",
    "make_parser",
    "push",
    "run_cli",
]
