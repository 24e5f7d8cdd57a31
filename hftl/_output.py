"""The output directory: choosing it safely, and the files hftl writes beside the model."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from datetime import datetime
from enum import Enum
from pathlib import Path

import yaml

from ._log import log
from .config import HftlTrainingArguments
from .errors import ConfigError

__all__ = [
    "prepare_output_dir",
    "check_free_space",
    "write_run_files",
    "CONFIG_FILE",
    "RESULTS_FILE",
    "REPORT_FILE",
]

CONFIG_FILE = "hftl_config.yaml"
RESULTS_FILE = "all_results.json"
REPORT_FILE = "test_report.json"
_FINISHED_MARKERS = (RESULTS_FILE, "model.safetensors", "adapter")


def prepare_output_dir(training_args: HftlTrainingArguments, method: str, resuming: bool) -> str:
    """Set ``training_args.output_dir``: the user's folder (never one holding a finished run unless
    ``--overwrite_output_dir``), or a fresh ``outputs/<timestamp>-<method>``."""
    if training_args.output_dir is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        candidate = Path("outputs") / f"{stamp}-{method}"
        suffix = 1
        while candidate.exists():
            suffix += 1
            candidate = Path("outputs") / f"{stamp}-{method}-{suffix}"
        path = str(candidate)
        if training_args.world_size > 1:  # every process must agree on the folder
            from accelerate.utils import broadcast_object_list

            path = broadcast_object_list([path])[0]
        _check_writable(Path(path))
        training_args.output_dir = path
        log(f"output_dir: {path}")
        return path
    folder = Path(training_args.output_dir)
    finished = [name for name in _FINISHED_MARKERS if (folder / name).exists()]
    if finished and not resuming and not training_args.overwrite_output_dir:
        raise ConfigError(
            f"--output_dir {folder} already holds a finished run ({finished[0]}); pass a new --output_dir, "
            "or --overwrite_output_dir to replace it."
        )
    _check_writable(folder)
    return str(folder)


def _nearest_existing(folder: Path) -> Path:
    """The folder itself, or its closest existing parent (where it would be created)."""
    folder = folder.absolute()
    return next(candidate for candidate in (folder, *folder.parents) if candidate.exists())


def _check_writable(folder: Path) -> None:
    """Refuse an output folder that can't be written before any compute, without writing anything
    (``os.access`` also reports read-only mounts, even for root)."""
    existing = _nearest_existing(folder)
    where = "it" if existing == folder.absolute() else f"the folder it would be created in, {existing},"
    if not existing.is_dir():
        what = "" if existing == folder.absolute() else f": {existing}"
        raise ConfigError(f"--output_dir {folder}{what} is a file, not a folder; pick another --output_dir.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"--output_dir {folder} can't be written ({where} is read-only for this user); pick a writable "
            "--output_dir."
        )


def _megabytes(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def check_free_space(output_dir: str | Path, model_path: str, factor: int = 3) -> None:
    """Refuse to start when the output folder's disk can't hold about ``factor`` times the model's weight
    files (the saved model plus a checkpoint with optimizer state): a full disk would otherwise stop the
    run at its first save, after the compute is spent."""
    folder = Path(model_path)
    weights = (
        sum(f.stat().st_size for f in folder.iterdir() if f.suffix in (".safetensors", ".bin", ".pth", ".pt"))
        if folder.is_dir()
        else 0
    )
    if not weights:  # a Hub download, whose size isn't known yet
        return
    existing = _nearest_existing(Path(output_dir))
    free = shutil.disk_usage(existing).free
    if free < factor * weights:
        raise ConfigError(
            f"Only {_megabytes(free)} free on the disk of --output_dir {output_dir}; this model needs about "
            f"{_megabytes(factor * weights)} there ({factor}x its {_megabytes(weights)} of weights, for the saved "
            "model and checkpoints); free some space or pick an --output_dir on another disk."
        )


# Fields stock TrainingArguments.__post_init__ fills in (so they always differ from the field default),
# and credentials, which never go to disk.
_SKIPPED = {"accelerator_config", "debug", "do_eval", "report_to", "hub_token", "push_to_hub_token"}


def _field_default(spec: dataclasses.Field):
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None


def _plain(value):
    return value.value if isinstance(value, Enum) else value


def _config_values(arguments: tuple) -> dict:
    """The options as a flat ``--config`` YAML mapping; training options only where they differ from
    hftl's defaults (so the file stays readable and still reruns the same job)."""
    values: dict = {}
    for instance in arguments:
        if isinstance(instance, HftlTrainingArguments):
            current = instance.to_dict()  # enums as strings, tokens redacted
            for spec in dataclasses.fields(instance):
                if (
                    spec.init
                    and spec.name not in _SKIPPED
                    and spec.name not in getattr(instance, "machine_resolved", ())
                    and current.get(spec.name) != _plain(_field_default(spec))
                ):
                    values[spec.name] = current[spec.name]
            values["output_dir"] = instance.output_dir
        else:
            values.update({spec.name: getattr(instance, spec.name) for spec in dataclasses.fields(instance)})
    return values


def write_run_files(output_dir: str | Path, metrics: dict, report: dict, arguments: tuple) -> None:
    """``all_results.json`` (as HF examples write it), the per-class test report, and the resolved
    config as YAML (rerun with ``--config``)."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESULTS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    (folder / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    header = f"# The resolved hftl options of this run. Rerun: --config {CONFIG_FILE} --output_dir NEW_DIR\n"
    (folder / CONFIG_FILE).write_text(header + yaml.safe_dump(_config_values(arguments), sort_keys=False))
