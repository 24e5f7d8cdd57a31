"""One logger for hftl's own lines; only the main process prints them."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("hftl")


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") in ("0", "-1")


def log(message: str) -> None:
    """Print an hftl progress line (main process only)."""
    if not is_main_process():
        return
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[hftl] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    logger.info(message)
