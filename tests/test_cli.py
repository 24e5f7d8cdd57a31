"""The ``hftl`` command: the dispatcher, ``--help`` without torch, ``train`` and ``push`` end to end, and
bad command lines as one line.

Training runs in a process forked from a server that imported hftl (``_forked.py``); the ``--help``
checks start a fresh ``python``, since the point is what a bare start imports."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hftl.cli import train_help, train_parser
from hftl.commands import COMMANDS
from hftl.commands.train import HELP_FILE, KINDS, help_key

HEAVY = ("torch", "transformers", "datasets")


def _fresh_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip


# runs the dispatcher on argv, then fails if it loaded torch, transformers or datasets
_IMPORTS_NOTHING_HEAVY = f"""
import sys
from hftl.commands import main
try:
    status = main(sys.argv[1:])
except SystemExit as stop:  # argparse's --help exits 0
    status = stop.code or 0
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})
if heavy:
    print('IMPORTED', heavy[:5], file=sys.stderr)
    status = 99
sys.exit(status)
"""


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["train", "image", "--help"]])
def test_help_answers_without_importing_torch(argv):
    done = _fresh_python(_IMPORTS_NOTHING_HEAVY, *argv)
    assert done.returncode == 0, done.stderr[-2000:]
    if argv == ["--help"]:
        for name in COMMANDS:
            assert f"\n  {name} " in done.stdout
    else:
        assert "--learning_rate" in done.stdout and "--method" in done.stdout and "--config" in done.stdout


def test_every_command_answers_help_without_importing_torch():
    for name in COMMANDS[1:]:  # train above
        done = _fresh_python(_IMPORTS_NOTHING_HEAVY, name, "--help")
        assert done.returncode == 0, (name, done.stderr[-2000:])
        assert f"usage: hftl {name}" in done.stdout


def test_saved_train_help_is_the_live_parsers_help():
    """``hftl train --help`` prints a saved copy; it must be what the live parser prints. After changing
    an option, regenerate it: ``python -c "from tests.test_cli import write_train_help; write_train_help()"``."""
    live = io.StringIO()
    with contextlib.redirect_stdout(live):
        train_help(cache=False)
    key, _, saved = HELP_FILE.read_text().partition("\n")
    assert key == help_key(), "hftl/commands/_train_help.txt was generated for other versions: regenerate it"
    assert saved == live.getvalue(), "hftl/commands/_train_help.txt is stale: regenerate it"


def write_train_help() -> None:
    live = io.StringIO()
    with contextlib.redirect_stdout(live):
        train_help(cache=False)
    HELP_FILE.write_text(f"{help_key()}\n{live.getvalue()}")


def test_a_stale_saved_help_is_built_live_once_then_cached(tmp_path, monkeypatch):
    """Saved for another transformers: the command builds the help live instead of printing it, keeps
    it in the user's cache, and the next --help reads the cache (no torch import)."""
    import hftl.commands.train as train_command

    stale = tmp_path / "_train_help.txt"
    stale.write_text("# hftl 0.0 transformers 0.0\nSTALE HELP\n")
    monkeypatch.setattr(train_command, "HELP_FILE", stale)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert train_command.main(["--help"]) == 0
    assert "STALE" not in printed.getvalue() and "--learning_rate" in printed.getvalue()
    (cached,) = (tmp_path / "cache" / "hftl").iterdir()
    assert cached.read_text() == f"{help_key()}\n{printed.getvalue()}"
    cached.write_text(f"{help_key()}\nCACHED HELP\n")  # the next --help prints the cache as it is
    again = io.StringIO()
    with contextlib.redirect_stdout(again):
        assert train_command.main(["--help"]) == 0
    assert again.getvalue() == "CACHED HELP\n"


def test_the_kind_sets_the_task_and_an_explicit_task_wins():
    for kind, task in KINDS.items():
        model_args = train_parser(task).parse([])[0]
        assert model_args.task == task, kind
    assert train_parser(KINDS["image"]).parse(["--task", "text-classification"])[0].task == "text-classification"


def test_console_script_and_python_m_hftl_run_the_same_command():
    script = Path(sys.executable).with_name("hftl")
    assert script.exists() or shutil.which("hftl"), "the hftl console script is not installed"
    for command in ([str(script if script.exists() else shutil.which("hftl"))], [sys.executable, "-m", "hftl"]):
        done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "commands:" in done.stdout and "train" in done.stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["trian"], "Unknown command 'trian'. Did you mean 'train'?"),
        (["train", "text", "--learning_rte", "1e-3"], "Unrecognised argument '--learning_rte'"),
        (["push"], "the following arguments are required: output_dir, repo_id (hftl push --help)"),
        (["push", "no/such/folder", "me/model", "--dry_run"], "no/such/folder"),
    ],
)
def test_a_bad_command_line_is_one_line(argv, expected, run_forked, tmp_path):
    exit_code, output = run_forked(*argv, module="hftl", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert exit_code == 2, output[-2000:]
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hftl: error: ") and expected in lines[0], lines
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.fixture(scope="module")
def trained(run_forked, tiny_bert_dir, tmp_path_factory):
    """``python -m hftl train text ...`` on the tiny model: (exit code, output, output folder)."""
    from .conftest import make_rows, write_csv

    folder = tmp_path_factory.mktemp("cli")
    data = write_csv(folder / "data" / "topics.csv", make_rows(60))
    exit_code, output = run_forked(
        "train", "text", "--model", tiny_bert_dir, "--dataset", str(data), "--max_steps", "2",
        "--per_device_train_batch_size", "4", "--save_strategy", "no", "--disable_tqdm", "true",
        "--output_dir", str(folder / "run"),
        module="hftl", cwd=folder, env={"HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    return exit_code, output, folder / "run"


def test_train_runs_the_recipe_and_prints_the_table(trained):
    exit_code, output, run = trained
    assert exit_code == 0, output[-2000:]
    assert "test_accuracy" in output and f"saved to {run}" in output
    assert "task: text-classification" in (run / "hftl_config.yaml").read_text()
    assert "test_accuracy" in json.loads((run / "all_results.json").read_text())


def test_push_dry_run_stages_the_run(trained, run_forked):
    exit_code, _, run = trained
    assert exit_code == 0
    exit_code, output = run_forked(
        "push", str(run), "me/tiny-topics", "--dry_run", "--space_app", module="hftl"
    )
    assert exit_code == 0, output[-2000:]
    staged = run / "push_dry_run"
    assert str(staged) in output
    assert (staged / "model.safetensors").exists() and (staged / "README.md").exists()
    assert 'MODEL = "me/tiny-topics"' in (staged / "app.py").read_text()  # --space_app


def test_every_public_name_loads_lazily():
    import hftl

    assert set(hftl._EXPORTS) < set(hftl.__all__)
    for name in hftl.__all__:
        assert getattr(hftl, name) is not None
    with pytest.raises(AttributeError):
        hftl.no_such_name  # noqa: B018
