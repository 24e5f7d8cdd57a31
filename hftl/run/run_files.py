"""The files a run writes beside the model: the resolved config (YAML), the results, the per-class report,
and ``hftl_outputs.json``, the list of every file the run wrote (what push uploads and
``--overwrite_output_dir`` deletes)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from enum import Enum
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..options.config import HftlTrainingArguments
from .identity import RUN_FILE

__all__ = [
    "CONFIG_FILE",
    "CONFIG_HEADER",
    "DRY_RUN_DIR",
    "OUTPUTS_FILE",
    "REPORT_FILE",
    "RESULTS_FILE",
    "config_values",
    "plain_path",
    "read_outputs",
    "record_outputs",
    "snapshot_files",
    "write_run_files",
]

CONFIG_FILE = "hftl_config.yaml"
RESULTS_FILE = "all_results.json"
REPORT_FILE = "test_report.json"
# the files a finished run wrote (relative paths): what push uploads and --overwrite_output_dir deletes
OUTPUTS_FILE = "hftl_outputs.json"
DRY_RUN_DIR = "push_dry_run"
CONFIG_HEADER = (
    f"# The resolved hftl options of this run. Rerun: --config {CONFIG_FILE} --output_dir NEW_DIR\n"
)
# written into output_dir at the start of a run (before the outputs list exists): hftl's own in a folder
# holding hftl_run.json
RUN_START_FILES = (RUN_FILE, "lr_finder.json", "lr_finder.png")
CHECKPOINT_DIR = re.compile(r"^checkpoint-\d+$")


def _relative(name: str) -> bool:
    """``name`` is a path inside the folder it is read against: not absolute, no ``..``."""
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts


def plain_path(folder: Path, relative: str) -> bool:
    """``relative`` names a place inside ``folder`` reached through no symbolic link."""
    parts = Path(relative).parts
    return _relative(relative) and not any(
        folder.joinpath(*parts[: index + 1]).is_symlink() for index in range(len(parts))
    )


def snapshot_files(output_dir: str | Path) -> dict[str, tuple[int, int, int]]:
    """Every plain file under ``output_dir`` (checkpoints and links left out) with its inode, size and
    modification time: what :func:`record_outputs` compares against to know what a run wrote."""
    folder = Path(output_dir)
    state = {}
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        if base == folder:
            dirs[:] = [d for d in dirs if not CHECKPOINT_DIR.match(d) and d != DRY_RUN_DIR]
        for name in files:
            path = base / name
            if not path.is_symlink():
                stat = path.stat()
                state[path.relative_to(folder).as_posix()] = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return state


def record_outputs(output_dir: str | Path, before: dict) -> list[str]:
    """Write ``hftl_outputs.json``: the files under ``output_dir`` that are new or changed since the
    ``before`` snapshot (the model, processor, adapter, card, images, results and config of this run)."""
    folder = Path(output_dir)
    after = snapshot_files(folder)
    written = sorted(
        name
        for name, state in after.items()
        if name not in (OUTPUTS_FILE, RUN_FILE)
        # the LR finder's files are this run's output too, written before the snapshot
        and (before.get(name) != state or name in RUN_START_FILES)
    )
    temporary = folder / f".{OUTPUTS_FILE}.tmp"
    temporary.write_text(json.dumps({"format": 1, "files": written}, indent=1) + "\n")
    os.replace(temporary, folder / OUTPUTS_FILE)
    return written


def read_outputs(output_dir: str | Path, strict: bool = True) -> list[str] | None:
    """The files ``hftl_outputs.json`` lists. ``strict``: refuse (one line) when it is missing or is not
    a list of plain relative paths; otherwise ``None`` for a missing or unreadable list."""
    folder = Path(output_dir)
    path = folder / OUTPUTS_FILE
    try:
        data = json.loads(path.read_text()) if path.is_file() and not path.is_symlink() else None
    except (OSError, ValueError):
        data = None
    files = data.get("files") if isinstance(data, dict) else None
    if isinstance(files, list) and all(isinstance(name, str) and _relative(name) for name in files):
        return files
    if not strict:
        return None
    why = "no" if not path.exists() else "an unreadable"
    raise ConfigError(
        f"{folder} has {why} {OUTPUTS_FILE} (the list of files an hftl run wrote), so its files can't be "
        "told from others; push the output folder of a finished run of this hftl version."
    )


# Fields stock TrainingArguments.__post_init__ fills in (so they always differ from the field default),
# and credentials, which never go to disk.
_SKIPPED = {"accelerator_config", "debug", "do_eval", "hub_token", "push_to_hub_token"}
_RECORDED_WHEN_SET = {"report_to"}  # an empty list is the default, "none"


def _field_default(spec: dataclasses.Field):
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None


def _plain(value):
    return value.value if isinstance(value, Enum) else value


def config_values(arguments: tuple, training_overrides: dict | None = None) -> dict:
    """The options as a flat ``--config`` YAML mapping; training options only where they differ from
    hftl's defaults (so the file stays readable and still reruns the same job). ``training_overrides``:
    training options to record as given there rather than as the run used them."""
    values: dict = {}
    for instance in arguments:
        if isinstance(instance, HftlTrainingArguments):
            current = {
                **instance.to_dict(),
                **(training_overrides or {}),
            }  # enums as strings, tokens redacted
            for spec in dataclasses.fields(instance):
                if (
                    spec.init
                    and spec.name not in _SKIPPED
                    and not (spec.name in _RECORDED_WHEN_SET and not current.get(spec.name))
                    and spec.name not in getattr(instance, "machine_resolved", ())
                    and current.get(spec.name) != _plain(_field_default(spec))
                ):
                    values[spec.name] = current[spec.name]
            values["output_dir"] = instance.output_dir
        else:
            values.update({spec.name: getattr(instance, spec.name) for spec in dataclasses.fields(instance)})
    return values


def write_run_files(
    output_dir: str | Path,
    metrics: dict,
    report: dict,
    arguments: tuple,
    training_overrides: dict | None = None,
) -> None:
    """``all_results.json`` (as HF examples write it), the per-class test report, and the resolved
    config as YAML (rerun with ``--config``; ``training_overrides`` as for :func:`config_values`)."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESULTS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    (folder / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    (folder / CONFIG_FILE).write_text(
        CONFIG_HEADER + yaml.safe_dump(config_values(arguments, training_overrides), sort_keys=False)
    )
