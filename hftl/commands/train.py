"""``hftl train [text|image|token|regression] [options]``: fine-tune, with the recipes' options and ``--config``.

The kind sets ``--task`` (an explicit ``--task`` still wins); with no option at all it runs the offline
demo of that kind, as ``recipes/<kind>_cls.py`` does. ``--help`` prints ``_train_help.txt``, the live
parser's help saved for the transformers version named on its first line (tests/test_cli.py checks it
against the live parser), because building the live parser imports torch and transformers (about 6 s).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import run_entry

__all__ = ["HELP", "KINDS", "HELP_FILE", "help_key", "main"]

HELP = "fine-tune a pretrained model (kinds: text, image, token, regression; the recipes' options, --config)"
KINDS = {
    "text": "text-classification",
    "image": "image-classification",
    "token": "token-classification",
    "regression": "text-regression",
}
HELP_FILE = Path(__file__).with_name("_train_help.txt")
ENTRY = "hftl.cli:train_command"
HELP_ENTRY = "hftl.cli:train_help"


def help_key() -> str:
    """The first line of ``_train_help.txt``: the versions its text was generated with."""
    try:
        transformers = version("transformers")
    except PackageNotFoundError:
        transformers = "none"
    return f"# hftl {version('hftl')} transformers {transformers}"


def _saved_help() -> str | None:
    try:
        key, _, text = HELP_FILE.read_text().partition("\n")
    except OSError:
        return None
    return text if key == help_key() else None


def main(args: list[str]) -> int:
    task = KINDS.get(args[0]) if args else None
    rest = args[1:] if task else args
    if any(flag in ("-h", "--help") for flag in rest):
        saved = _saved_help()
        if saved is not None:
            sys.stdout.write(saved)
            return 0
        return run_entry(HELP_ENTRY)  # another transformers than the saved help's: build it live
    return run_entry(ENTRY, rest, task)
