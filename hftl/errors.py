"""hftl's exceptions: each carries one actionable line (what is wrong, how to fix it)."""

from __future__ import annotations

__all__ = [
    "HftlError",
    "ConfigError",
    "DataError",
    "ModelNotFoundError",
    "DatasetNotFoundError",
    "CheckpointError",
    "TrainingStopped",
    "first_line",
]


class HftlError(ValueError):
    """Base class for every error hftl raises on bad input.

    The message is a single line saying what is wrong and how to fix it. Recipes print it
    without a traceback and exit with status 2.
    """

    kind = "error"
    exit_status = 2


class ConfigError(HftlError):
    """An option, a YAML key or a combination of options is invalid."""


class DataError(HftlError):
    """The dataset is unusable: missing or ambiguous columns, bad labels, empty splits."""


class ModelNotFoundError(HftlError):
    """A model id or path could not be resolved locally, from an installed copy or from the Hub."""


class DatasetNotFoundError(DataError):
    """A dataset name, file or Hub id could not be found or loaded."""


class CheckpointError(HftlError):
    """A checkpoint to resume from is incomplete, corrupted, unsafe, or was written by another setup."""


class TrainingStopped(HftlError):
    """Training was stopped by SIGTERM or SIGINT after saving a complete checkpoint to resume from.

    Recipes exit with the shell's status for that signal (143 or 130)."""

    kind = "stopped"

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.exit_status = 128 + signal_number


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty): what a one-line
    hftl error quotes from a library's many-line one."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
