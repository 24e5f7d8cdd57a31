"""The ``hftl`` command (and ``python -m hftl``): ``hftl train|predict|evaluate|export|push|app ...``.

Each command is a module here that imports only the standard library and names its work as ``ENTRY``
(``"package.module:function"``), imported only once its options are parsed: so ``hftl --help`` and
``hftl <command> --help`` answer without loading torch (about 6 s on a 2-core CPU). A command module
defines ``HELP`` (one line), ``add_arguments(parser)`` and ``ENTRY``; ``train`` parses with the recipes'
own parser instead (its ``--help`` comes from ``_train_help.txt``, checked against the live parser by the
tests). Bad input is one line ``hftl: error: ...`` and exit status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import version

from .._log import is_main_process
from ..errors import ConfigError, HftlError

__all__ = ["COMMANDS", "CommandParser", "main", "run_entry"]

# name -> module under hftl.commands; the order is the order of `hftl --help`
COMMANDS = ("train", "predict", "evaluate", "export", "push", "app")
_USAGE = "hftl <command> [options]   (hftl <command> --help for its options)"


def _command_module(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def _overview() -> str:
    lines = [
        f"usage: {_USAGE}",
        "",
        "Transfer learning on the Hugging Face stack, offline-first.",
        "",
        "commands:",
    ]
    for name in COMMANDS:
        lines.append(f"  {name:<10} {_command_module(name).HELP}")
    lines += [
        "",
        "Multi-GPU: accelerate launch -m hftl train ...   Python: from hftl import finetune, predict",
    ]
    return "\n".join(lines)


def _report(error: HftlError) -> int:
    if is_main_process():  # under accelerate/torchrun every process has the same complaint
        print(f"hftl: {error.kind}: {error}", file=sys.stderr)
    return error.exit_status


class CommandParser(argparse.ArgumentParser):
    """argparse for one command, whose complaints are one :class:`ConfigError` line, not usage + exit."""

    def error(self, message: str):
        raise ConfigError(f"{message} ({self.prog} --help)")


def run_entry(entry: str, *arguments) -> int:
    """Import ``"package.module:function"`` and call it; an :class:`hftl.HftlError` becomes one line
    (``hftl: <kind>: ...``) and its exit status."""
    module_name, _, function_name = entry.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        status = function(*arguments)
    except HftlError as error:
        return _report(error)
    return int(status or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """``hftl <command> ...``: dispatch to the command; returns (and, as a console script, exits with) its
    exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_overview())
        return 0
    if args[0] == "--version":
        print(f"hftl {version('hftl')}")
        return 0
    name, rest = args[0], args[1:]
    try:
        if name not in COMMANDS:
            close = difflib.get_close_matches(name, COMMANDS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"Unknown command '{name}'.{hint} Commands: {', '.join(COMMANDS)} (hftl --help)."
            )
        module = _command_module(name)
        if hasattr(module, "main"):  # a command that parses its own options (train: the recipes' parser)
            return int(module.main(rest) or 0)
        parser = CommandParser(prog=f"hftl {name}", description=module.HELP)
        module.add_arguments(parser)
        namespace = parser.parse_args(rest)
    except HftlError as error:
        return _report(error)
    return run_entry(module.ENTRY, namespace)
