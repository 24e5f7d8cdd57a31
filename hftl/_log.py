"""One logger for hftl's own lines; only the main process prints them."""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger("hftl")


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (notebooks and test capture replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") in ("0", "-1")


def log(message: str) -> None:
    """Print an hftl progress line (main process only)."""
    if not is_main_process():
        return
    if not logger.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("[hftl] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    logger.info(message)
