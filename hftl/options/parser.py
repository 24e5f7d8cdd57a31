"""Command-line and YAML parsing: dataclass default < YAML (``--config``) < command-line flag."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from transformers import HfArgumentParser

from ..errors import ConfigError, first_line
from .checks import coerce_value
from .config import (
    METHOD_CHOICES,
    TASK_CHOICES,
    DataArguments,
    HftlTrainingArguments,
    MethodArguments,
    ModelArguments,
)

__all__ = ["HftlArgumentParser", "make_parser"]

ARGUMENT_CLASSES = (ModelArguments, DataArguments, MethodArguments, HftlTrainingArguments)


def did_you_mean(name: str, known: Sequence[str], prefix: str = "") -> str:
    """`` Did you mean 'x'?`` for the closest known name, or an empty string."""
    close = difflib.get_close_matches(name, known, n=1)
    return f" Did you mean '{prefix}{close[0]}'?" if close else ""


class _RepeatableColumns(argparse.Action):
    """``--text_column a --text_column b`` and ``--text_column a b`` both give ``[a, b]``; values from
    the command line replace a YAML default instead of extending it."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = f"_seen_{self.dest}"
        current = list(getattr(namespace, self.dest) or []) if getattr(namespace, seen, False) else []
        current.extend(values)
        setattr(namespace, self.dest, current)
        setattr(namespace, seen, True)


class HftlArgumentParser(HfArgumentParser):
    """``HfArgumentParser`` that reads ``--config file.yaml`` and reports bad input in one line.

    YAML keys become the parser's defaults, so flags given on the command line still win. Unknown
    flags, unknown YAML keys and malformed values raise :class:`hftl.errors.ConfigError` instead of
    printing usage and exiting.

    Args:
        dataclass_types (tuple[type, ...]): The argument dataclasses to fill (hftl's four by default).

    Example:
        >>> parser = make_parser()
        >>> model_args, data_args, method_args, training_args = parser.parse(["--dataset", "bbc-news"])
    """

    def __init__(self, dataclass_types=ARGUMENT_CLASSES, **kwargs):
        super().__init__(dataclass_types, conflict_handler="resolve", **kwargs)
        # registry-backed help: every registered method and task, and each method's default rate
        if MethodArguments in self.dataclass_types:
            self._help_of("method").help = METHOD_CHOICES.help()
        if ModelArguments in self.dataclass_types:
            self._help_of("task").help = TASK_CHOICES.help()
        if HftlTrainingArguments in self.dataclass_types:
            self._help_of("learning_rate").help = (
                "Peak learning rate (auto: the built-in dataset's tuned rate for the method, else "
                f"{METHOD_CHOICES.note('learning_rates')})."
            )
        if DataArguments in self.dataclass_types:
            help_text = next(a.help for a in self._actions if a.dest == "text_column")
            self.add_argument(
                "--text_column",
                action=_RepeatableColumns,
                nargs="+",
                default=None,
                metavar="COLUMN",
                help=help_text + " Repeat the flag (or give two names) for a pair.",
            )
        self.add_argument(
            "--config",
            type=str,
            default=None,
            help="YAML file of option values; flags given on the command line override it.",
        )

    def error(self, message: str):  # argparse's hook: raise instead of printing usage and exiting
        raise ConfigError(f"{message}. Run with --help to see every option.")

    def option_names(self) -> list[str]:
        return [action.dest for action in self._actions if action.dest not in ("help", "config")]

    def _help_of(self, dest: str) -> argparse.Action:
        return next(action for action in self._actions if action.dest == dest)

    def parse(self, args: Sequence[str] | None = None) -> tuple:
        """Parse ``args`` (default ``sys.argv[1:]``) into the dataclasses, applying ``--config`` first."""
        args = list(sys.argv[1:] if args is None else args)
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--config", default=None)
        known, _ = pre.parse_known_args(args)
        if known.config:
            self.set_defaults(**self.read_config(known.config))
        namespace, unknown = self.parse_known_args(args)
        if unknown:
            flag = next((item for item in unknown if item.startswith("-")), unknown[0])
            hint = did_you_mean(flag.lstrip("-").split("=")[0], self.option_names(), prefix="--")
            raise ConfigError(f"Unrecognised argument '{flag}'.{hint} Run with --help to see every option.")
        del namespace.config
        return self._to_dataclasses(namespace)

    def read_config(self, path: str) -> dict:
        """Read a YAML config into ``{option: value}``, refusing keys no dataclass has."""
        file = Path(path)
        if not file.is_file():
            what = "is a folder" if file.is_dir() else "does not exist"
            raise ConfigError(f"Config file '{path}' {what}; pass the path of a YAML file to --config.")
        try:
            text = file.read_bytes().decode("utf-8")
        except OSError as exc:
            raise ConfigError(
                f"Config file '{path}' can't be read ({exc.strerror}); check its permissions."
            ) from None
        except UnicodeDecodeError as exc:
            line = exc.object[: exc.start].count(b"\n") + 1
            raise ConfigError(
                f"Config file '{path}' is not UTF-8 text (byte {exc.object[exc.start]:#x} on line {line}); "
                f"save it as UTF-8 (iconv -f latin1 -t utf-8 '{path}' > fixed.yaml)."
            ) from None
        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            where = f" (line {line + 1})" if line is not None else ""
            raise ConfigError(f"Config file '{path}' is not valid YAML{where}; fix the syntax.") from None
        if not isinstance(values, dict):
            raise ConfigError(
                f"Config file '{path}' must be a mapping of option: value, one a line (got a {type(values).__name__})."
            )
        known = self.option_names()
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"Unknown key '{key}' in config file '{path}'.{did_you_mean(str(key), known)} "
                    "Keys are the command-line option names without dashes."
                )
        owner = field_owners(self.dataclass_types)
        return {  # argparse converts only text defaults; a list or mapping would reach the dataclass as is
            key: coerce_value(owner[key], key, value, f"Config file '{path}'") if key in owner else value
            for key, value in values.items()
        }

    def _to_dataclasses(self, namespace: argparse.Namespace) -> tuple:
        values = vars(namespace)
        return tuple(
            build_dataclass(dtype, {f.name: values[f.name] for f in dataclasses.fields(dtype) if f.init})
            for dtype in self.dataclass_types
        )


def field_owners(dataclass_types=ARGUMENT_CLASSES) -> dict[str, type]:
    """Option name -> the dataclass that holds it."""
    return {f.name: cls for cls in dataclass_types for f in dataclasses.fields(cls) if f.init}


def build_dataclass(dtype, values: dict):
    """``dtype(**values)``, turning a stock ``ValueError`` from validation into a one-line ConfigError."""
    try:
        return dtype(**values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        reason = first_line(exc)
        raise ConfigError(f"Invalid {dtype.__name__}: {reason}") from None


def make_parser() -> HftlArgumentParser:
    """The parser for hftl's four argument dataclasses plus ``--config``."""
    return HftlArgumentParser(ARGUMENT_CLASSES)
