"""Running a recipe from the command line: bad input becomes one line and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from ._log import is_main_process
from .errors import HftlError
from .options.parser import HftlArgumentParser

__all__ = ["run_cli"]


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
