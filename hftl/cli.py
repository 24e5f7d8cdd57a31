"""Running a recipe from the command line: bad input becomes one line and exit status 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from ._log import is_main_process
from .api import finetune
from .commands.train import cached_help_file, help_key
from .errors import HftlError
from .hub import push
from .options.parser import HftlArgumentParser, make_parser

__all__ = ["push_command", "run_cli", "train_command", "train_help"]

TRAIN_PROG = "hftl train [text|image|token|regression]"
HELP_COLUMNS = "100"  # the saved help (hftl/commands/_train_help.txt) and the live one wrap alike


def run_cli(main: Callable, parser: HftlArgumentParser, args: Sequence[str] | None = None) -> None:
    """Parse ``args`` (default ``sys.argv[1:]``), call ``main(*dataclasses)``, and turn an
    :class:`hftl.HftlError` into ``hftl: error: ...`` on stderr and exit status 2, with no traceback
    (a training stopped by a signal: ``hftl: stopped: ...`` and 130 or 143)."""
    try:
        main(*parser.parse(args))
    except HftlError as error:
        if is_main_process():
            print(f"hftl: {error.kind}: {error}", file=sys.stderr)
        raise SystemExit(error.exit_status) from None


def train_parser(task: str | None = None) -> HftlArgumentParser:
    """The recipes' parser for ``hftl train``, with ``--task`` defaulting to the kind's task."""
    parser = make_parser()
    parser.prog = TRAIN_PROG
    parser.description = (
        "Fine-tune a pretrained model on labelled data. The kind (text, image, token, regression) sets "
        "--task; with no option at all it runs that kind's offline demo. Every option below also reads "
        "from a YAML file (--config), where flags given here win."
    )
    if task:
        parser.set_defaults(task=task)
    return parser


def train_help(cache: bool = True) -> None:
    """Print ``hftl train --help`` from the live parser (the slow path: imports torch and transformers),
    and keep it in the user's cache for the next ``--help`` (``cache``; a cache that can't be written is
    skipped)."""
    os.environ["COLUMNS"] = HELP_COLUMNS
    text = train_parser().format_help()
    sys.stdout.write(text)
    if cache:
        file = cached_help_file()
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            partial = file.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(f"{help_key()}\n{text}")
            partial.replace(file)  # whole or not at all, even with two --help at once
        except OSError:
            pass


def train_command(args: Sequence[str], task: str | None = None) -> None:
    """``hftl train``: parse as the recipes do, fine-tune, print the results table and the output folder."""
    run_cli(_train_and_report, train_parser(task), args)


def _train_and_report(*arguments) -> None:
    result = finetune(*arguments)
    if result.trainer.is_world_process_zero():
        print(f"\n{result.table()}\n\nsaved to {result.output_dir}")


def push_command(args) -> None:
    """``hftl push``: :func:`hftl.push` with the command's options; prints the repo URL or dry-run folder."""
    print(
        push(
            args.output_dir,
            args.repo_id,
            private=args.private,
            dry_run=args.dry_run,
            space_app=args.space_app,
        )
    )
