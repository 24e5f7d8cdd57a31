"""Run a recipe in a child process forked from a server that imported hftl once (a fresh interpreter
spends ~10 s importing torch and transformers), with its output in a log file."""

from __future__ import annotations

import os
import runpy
import sys


def run_recipe(recipe: str, args: list[str], env: dict[str, str], log_path: str) -> None:
    os.environ.update(env)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.argv = [recipe, *args]
    runpy.run_path(recipe, run_name="__main__")  # exits with the recipe's status
