"""The text recipe end to end as a subprocess, and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import REPO

RECIPE = str(REPO / "recipes" / "text_cls.py")


def run_recipe(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, RECIPE, *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_recipe_trains_saves_and_prints_the_table(tiny_bert_dir, text_csv, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("method: lora\nmax_steps: 2\nper_device_train_batch_size: 4\nlearning_rate: 1.0e-3\n")
    done = run_recipe(
        "--config",
        str(config),
        "--model",
        tiny_bert_dir,
        "--dataset",
        str(text_csv),
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "test_accuracy" in done.stdout and "trainable_params" in done.stdout
    runs = list((tmp_path / "outputs").iterdir())  # no --output_dir: a fresh timestamped folder
    assert len(runs) == 1 and runs[0].name.endswith("-lora")
    results = json.loads((runs[0] / "all_results.json").read_text())
    assert results["trainable_fraction"] < 0.05
    saved = (runs[0] / "hftl_config.yaml").read_text()
    assert "method: lora" in saved and "learning_rate: 0.001" in saved and "max_length: 64" in saved


def test_recipe_bad_input_is_one_line_without_traceback(tmp_path):
    done = run_recipe("--dataset", "nobody/missing", "--model", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("hftl: error: Model directory")
    assert not (tmp_path / "outputs").exists()


def test_recipe_help_documents_the_options():
    done = run_recipe("--help")
    assert done.returncode == 0
    for option in (
        "--method",
        "--lora_r",
        "--text_column",
        "--label_column",
        "--max_length",
        "--config",
        "--learning_rate",
        "--push_to_hub",
    ):
        assert option in done.stdout


def test_two_cpu_processes_share_one_output_dir(tiny_bert_dir, text_csv, tmp_path):
    """torchrun, 2 processes over gloo: one timestamped folder, written once, by the main process."""
    import shutil

    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            torchrun,
            "--nproc_per_node",
            "2",
            RECIPE,
            "--use_cpu",
            "--model",
            tiny_bert_dir,
            "--dataset",
            str(text_csv),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((tmp_path / "outputs").iterdir())
    assert len(runs) == 1
    results = json.loads((runs[0] / "all_results.json").read_text())
    assert results["train_samples"] == 48 and results["test_samples"] == 6
    assert done.stdout.count("test_accuracy") == 1  # only the main process prints the table
