"""Run a script, a module or a code snippet as a fresh ``python`` process would, in a child forked from
a server that imported hftl once: a fresh interpreter spends ~12 s importing torch, transformers and
datasets, a forked child starts at once.

The server is multiprocessing's "forkserver": an interpreter of its own, started once a session, that
imports :data:`PRELOAD` and then only forks. It never holds a model or any test state, so a child shows
what a fresh process would (a saved model reloads, a recipe runs end to end); only the import itself is
not exercised. The child gets the caller's current environment and working directory; values that
libraries read from the environment at import time (``HF_HOME``, ``HF_HUB_OFFLINE``) are those the
server started with, which ``conftest.py`` sets before anything imports huggingface_hub. Unlike a real
process, a child leaves with ``os._exit``: atexit handlers do not run.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import runpy
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

# hftl's public names load lazily, so the server imports what they load (hftl.api: torch, transformers,
# datasets, peft; hftl.cli; hftl.inference) itself; hftl imports matplotlib only to plot (~0.6 s)
PRELOAD = ["hftl", "hftl.api", "hftl.cli", "hftl.inference", "matplotlib", "tests._forked"]


class Forked(NamedTuple):
    exit_code: int  # the SystemExit code; 1 after an uncaught exception; -N if killed by signal N
    output: str  # stdout and stderr together, in the order written


def forkserver_context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # no effect once the server runs
    return context


def start_server() -> None:
    """Start the server without waiting: it imports hftl while the caller goes on."""
    forkserver_context()
    multiprocessing.forkserver.ensure_running()


def run_forked(
    *args: object,
    script: str | os.PathLike | None = None,
    module: str | None = None,
    code: str | None = None,
    cwd: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> Forked:
    """Like ``python SCRIPT ARGS``, ``python -m MODULE ARGS`` or ``python -c CODE ARGS`` (give one of
    script, module, code) with ``os.environ`` updated by ``env``, run in ``cwd``."""
    given = [
        (kind, target)
        for kind, target in (("script", script), ("module", module), ("code", code))
        if target is not None
    ]
    if len(given) != 1:
        raise TypeError("run_forked needs exactly one of script=, module=, code=")
    kind, target = given[0]
    handle, log_path = tempfile.mkstemp(prefix="hftl-forked-", suffix=".log")
    os.close(handle)
    try:
        process = forkserver_context().Process(
            target=_child,
            args=(
                kind,
                str(target),
                [str(arg) for arg in args],
                {**os.environ, **(env or {})},  # the server's environment is that of its start
                None if cwd is None else str(cwd),
                log_path,
            ),
        )
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            tail = Path(log_path).read_text(errors="replace")[-3000:]
            raise TimeoutError(f"{kind} {target} {args} ran over {timeout} s:\n{tail}")
        return Forked(process.exitcode, Path(log_path).read_text(errors="replace"))
    finally:
        os.unlink(log_path)


def run_recipe(recipe: str, args: list[str], env: dict[str, str], log_path: str) -> None:
    """A Process target (reliability/test_crash.py): ``env`` updates the server's environment."""
    os.environ.update(env)
    _redirect(log_path)
    _execute("script", recipe, args)  # exits with the recipe's status


def _child(
    kind: str, target: str, args: list[str], env: dict[str, str], cwd: str | None, log_path: str
) -> None:
    os.environ.clear()
    os.environ.update(env)
    if cwd is not None:
        os.chdir(cwd)
    _redirect(log_path)
    _execute(kind, target, args)  # a SystemExit becomes the exit code; an exception prints and gives 1


def _redirect(log_path: str) -> None:
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdout.reconfigure(line_buffering=True)  # keep stdout and stderr lines in the order written


def _execute(kind: str, target: str, args: list[str]) -> None:
    if kind == "script":
        sys.argv = [target, *args]
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))  # as `python SCRIPT` does
        runpy.run_path(target, run_name="__main__")
    elif kind == "module":
        sys.argv = [target, *args]  # run_module puts the module's file in argv[0]
        sys.path.insert(0, os.getcwd())  # as `python -m` does
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c", *args]
        sys.path.insert(0, "")  # as `python -c` does
        exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
