"""``hftl train [text|image|token|regression] [options]``: fine-tune, with the recipes' options and ``--config``.

The kind sets ``--task`` (an explicit ``--task`` still wins); with no option at all it runs the offline
demo of that kind, as ``recipes/<kind>_cls.py`` does. ``--help`` prints ``_train_help.txt``, the live
parser's help saved for the transformers version named on its first line (tests/test_cli.py checks it
against the live parser), because building the live parser imports torch and transformers (about 6 s).
With another transformers the help is built live once and kept in the user's cache
(``$XDG_CACHE_HOME/hftl``, default ``~/.cache/hftl``), keyed by both versions.
"""

from __future__ import annotations

import hashlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import run_entry

__all__ = ["HELP", "KINDS", "HELP_FILE", "cached_help_file", "help_key", "main"]

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


def cached_help_file() -> Path:
    """Where a help built live for these versions is kept for the next ``--help``."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hftl"
    return cache / f"train_help-{hashlib.sha256(help_key().encode()).hexdigest()[:16]}.txt"


def _saved_help() -> str | None:
    """The saved help for the installed versions: shipped with hftl, else cached by an earlier --help."""
    for file in (HELP_FILE, cached_help_file()):
        try:
            key, _, text = file.read_text().partition("\n")
        except OSError:
            continue
        if key == help_key():
            return text
    return None


def main(args: list[str]) -> int:
    task = KINDS.get(args[0]) if args else None
    rest = args[1:] if task else args
    if any(flag in ("-h", "--help") for flag in rest):
        saved = _saved_help()
        if saved is not None:
            sys.stdout.write(saved)
            return 0
        return run_entry(HELP_ENTRY)  # another transformers than the saved help's: built live, then cached
    return run_entry(ENTRY, rest, task)
