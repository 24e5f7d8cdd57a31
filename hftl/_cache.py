"""hftl's folders in the Hugging Face cache, and building one of them once, atomically."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

__all__ = ["hf_home", "build_once"]


def hf_home() -> Path:
    """``$HF_HOME``, or huggingface_hub's default ``~/.cache/huggingface``."""
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))


def build_once(folder: Path, build: Callable[[Path], None]) -> Path:
    """``build(tmp)`` into a private temporary folder, then renamed to ``folder`` in one step, so a
    half-written folder is never picked up; if another process built it first, its copy stays."""
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    build(tmp)
    try:
        tmp.rename(folder)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
