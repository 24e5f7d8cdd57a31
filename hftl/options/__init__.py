"""Everything the user can set: the argument dataclasses, their checks, the parser and YAML configs.

A leaf package: it imports nothing else of hftl but ``errors`` and ``_log``."""

from .config import DataArguments, MethodArguments, ModelArguments
from .parser import HftlArgumentParser, make_parser
from .training_args import HftlTrainingArguments

__all__ = [
    "DataArguments",
    "HftlArgumentParser",
    "HftlTrainingArguments",
    "MethodArguments",
    "ModelArguments",
    "make_parser",
]
