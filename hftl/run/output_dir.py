"""The output directory: choosing it safely, refusing to overwrite what hftl did not write, clearing an
earlier run, checking free space."""

from __future__ import annotations

import os
import re
import shutil
from datetime import datetime
from pathlib import Path

from .._log import log
from ..errors import ConfigError
from ..options.config import HftlTrainingArguments
from .identity import RUN_FILE
from .run_files import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    CONFIG_HEADER,
    DRY_RUN_DIR,
    OUTPUTS_FILE,
    RESULTS_FILE,
    RUN_START_FILES,
    plain_path,
    read_outputs,
)

__all__ = ["prepare_output_dir", "check_free_space", "clear_earlier_run"]

_FINISHED_MARKERS = (RESULTS_FILE, "model.safetensors", "adapter", OUTPUTS_FILE)
_CHECKPOINT_MANIFEST = (
    "hftl_checkpoint.json"  # hftl.run.checkpoints.MANIFEST (which imports this module's users)
)
# the names of the files a run writes into output_dir (and adapter/): model, config, tokenizer and
# processor files, card, results, hftl's own files, plots. Another file of such a name would be
# overwritten; files of other names are left alone beside the run (push uploads only the listed files).
_RUN_NAMES = re.compile(
    r"README\.md|config\.json|.*_config\.json|(.*tokenizer.*|.*vocab.*)\.(json|txt|model)|merges\.txt"
    r"|.*\.model|special_tokens_map\.json|added_tokens\.json|chat_template\.jinja|label_names\.json"
    r"|all_results\.json|test_report\.json|hftl_.*\.(json|yaml)|lr_finder\.json|(pytorch_model.*|training_args)\.bin"
    r"|.*\.(safetensors|png|jpe?g)|.*\.safetensors\.index\.json",
    re.IGNORECASE,  # README.md and readme.md are one file on macOS and Windows
)
_CLUTTER = {".DS_Store", "Thumbs.db", "desktop.ini"}  # the desktop's own files: not worth a line


def prepare_output_dir(
    training_args: HftlTrainingArguments, method: str, resuming: bool, *, resume_asked: bool | None = None
) -> str:
    """The run's output folder: the user's ``--output_dir``, or a fresh ``outputs/<timestamp>-<method>``
    (``training_args`` is read, not changed).

    The user's folder may not hold a finished run (unless ``--overwrite_output_dir``), nor, when
    ``resume_asked`` is given (a ``finetune()`` run, not a search's root), an interrupted run (hftl
    checkpoints) that isn't being resumed, nor, unless a checkpoint is resumed, a file hftl did not write
    by a name a run writes (see :func:`clear_earlier_run`). Process 0 decides for all processes."""
    if training_args.output_dir is not None and not str(training_args.output_dir).strip():
        raise ConfigError(
            "--output_dir is empty; name a folder, or leave the option out for a fresh "
            "outputs/<timestamp>-<method> folder."
        )
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
        log(f"output_dir: {path}")
        return path
    folder = Path(training_args.output_dir)
    refusal = None
    if training_args.process_index == 0:
        try:
            _check_output_dir(folder, training_args.overwrite_output_dir, resuming, resume_asked)
        except ConfigError as error:
            refusal = str(error)
    if training_args.world_size > 1:
        # process 0 alone looks, before any process writes (the barrier): the others would otherwise see
        # its hftl_run.json or its deletions and decide differently
        from accelerate import PartialState
        from accelerate.utils import broadcast_object_list

        refusal = broadcast_object_list([refusal])[0]
        PartialState().wait_for_everyone()
    if refusal:
        raise ConfigError(refusal)
    _check_writable(folder)
    return str(folder)


def _check_output_dir(folder: Path, overwrite: bool, resuming: bool, resume_asked: bool | None) -> None:
    finished = [name for name in _FINISHED_MARKERS if (folder / name).exists()]
    if finished and not resuming and not overwrite:
        raise ConfigError(
            f"--output_dir {folder} already holds a finished run ({finished[0]}); pass a new --output_dir, "
            "or --overwrite_output_dir to replace it."
        )
    if resume_asked is not None and folder.is_dir():
        _check_run_folder(folder, resume_asked, resuming, overwrite, finished)


def _hftl_checkpoints(folder: Path) -> list[Path]:
    """``checkpoint-<step>`` folders hftl wrote: real folders with a manifest, or, in a folder holding
    ``hftl_run.json``, without one (a save a crash cut short)."""
    started = (folder / RUN_FILE).is_file() and not (folder / RUN_FILE).is_symlink()
    return [
        path
        for path in folder.iterdir()
        if CHECKPOINT_DIR.match(path.name)
        and path.is_dir()
        and not path.is_symlink()
        and (started or (path / _CHECKPOINT_MANIFEST).is_file())
    ]


def _plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _made_by_hftl(folder: Path) -> bool:
    """``folder`` is an hftl output even without its ``hftl_outputs.json`` (an older hftl, or a run cut
    short between saving the model and listing its files): it holds hftl_run.json, all_results.json or
    an hftl_config.yaml hftl wrote."""
    if _plain_file(folder / RUN_FILE) or _plain_file(folder / RESULTS_FILE):
        return True
    if not _plain_file(folder / CONFIG_FILE):
        return False
    with open(folder / CONFIG_FILE, encoding="utf-8", errors="replace") as file:
        return file.readline().startswith(CONFIG_HEADER.partition(".")[0])


def _run_writes(name: str) -> bool:
    """A run may write a file or folder of this name into output_dir (``adapter/`` holds such names)."""
    return bool(_RUN_NAMES.fullmatch(name) or CHECKPOINT_DIR.match(name) or name in ("adapter", DRY_RUN_DIR))


def _hftl_files(folder: Path) -> tuple[set[str], bool]:
    """The files hftl wrote here as far as can be told: those ``hftl_outputs.json`` lists; without that
    list, in a folder :func:`_made_by_hftl`, every file of a name a run writes (``True`` then)."""
    listed = set(read_outputs(folder, strict=False) or ())
    if listed or not _made_by_hftl(folder):
        return listed, False
    named = set()
    for place in (folder, folder / "adapter"):
        if place.is_dir() and not place.is_symlink():
            named.update(
                path.relative_to(folder).as_posix()
                for path in place.iterdir()
                if _plain_file(path) and _RUN_NAMES.fullmatch(path.name)
            )
    return named, True


def _in_the_way(folder: Path) -> tuple[list[str], list[str]]:
    """Paths in ``folder`` hftl did not write, split into those named like what a run writes (a run would
    overwrite them; links among them are never followed) and the rest (left alone beside the run)."""
    hftl_files = _hftl_files(folder)[0]
    started = _plain_file(folder / RUN_FILE)
    owned_checkpoints = {path.name for path in _hftl_checkpoints(folder)}
    in_the_way, others = [], []
    for path in sorted(folder.iterdir()):
        name = path.name
        if path.is_symlink() or not path.is_dir():
            owned = not path.is_symlink() and (
                name in hftl_files
                or (name == OUTPUTS_FILE and bool(hftl_files))
                or (started and name in RUN_START_FILES)
            )
            if not owned:
                (in_the_way if _run_writes(name) else others).append(name)
        elif CHECKPOINT_DIR.match(name):
            if name not in owned_checkpoints:  # Trainer's rotation would delete it
                in_the_way.append(f"{name}/")
        elif name == DRY_RUN_DIR:
            if not hftl_files:
                in_the_way.append(f"{name}/")
        elif name == "adapter":
            for inner in sorted(path.iterdir()):
                relative = f"adapter/{inner.name}"
                if relative not in hftl_files or inner.is_symlink():
                    (in_the_way if _RUN_NAMES.fullmatch(inner.name) else others).append(relative)
        elif not any(listed.startswith(f"{name}/") for listed in hftl_files):  # e.g. runs/ of a tracker
            others.append(f"{name}/")
    return in_the_way, [name for name in others if name not in _CLUTTER]


def _check_run_folder(
    folder: Path, resume_asked: bool, resuming: bool, overwrite: bool, finished: list[str]
) -> None:
    steps = sorted(_hftl_checkpoints(folder), key=lambda path: int(path.name.rpartition("-")[2]))
    # a run that stopped before its first checkpoint (out of memory, bad data, Ctrl-C) left only its
    # hftl_run.json: nothing to continue, so a rerun of the same command replaces it
    if steps and not finished and not resume_asked and not overwrite:
        raise ConfigError(
            f"--output_dir {folder} holds an interrupted run ({steps[-1].name}): a fresh start would overwrite "
            "its checkpoints. Continue it with --resume_from_checkpoint auto, or pass --overwrite_output_dir "
            "to start again."
        )
    if resuming:  # continuing the run hftl started here, whose files these are
        return
    in_the_way, others = _in_the_way(folder)
    if in_the_way:
        shown = ", ".join(in_the_way[:3])[:60] + (
            f" and {len(in_the_way) - 3} more" if len(in_the_way) > 3 else ""
        )
        raise ConfigError(
            f"--output_dir {folder} holds files hftl did not write ({shown}), which a run would "
            "overwrite; move them, or pick a new or empty --output_dir (--overwrite_output_dir replaces only "
            "an earlier hftl run)."
        )
    if not steps and not finished and _plain_file(folder / RUN_FILE):
        log(f"{folder}: the earlier run stopped before its first checkpoint; its {RUN_FILE} is replaced")
    if others:
        shown = ", ".join(others[:3])[:60] + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        log(f"{folder} also holds {shown}: left as they are beside the run (never deleted nor pushed)")


def clear_earlier_run(output_dir: str | Path) -> list[str]:
    """``--overwrite_output_dir``: delete what an earlier hftl run wrote here and nothing else: the files
    in its ``hftl_outputs.json`` (without that list, in a folder hftl's own files show to be an hftl
    output, the files named as a run names them), its checkpoints, ``hftl_run.json`` and the push dry-run
    folder. Run only after :func:`prepare_output_dir` found no other file of such a name; other files
    stay, and links are never followed. Returns what went."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    removed = []
    listed = sorted(_hftl_files(folder)[0])
    checkpoints = _hftl_checkpoints(folder)  # before hftl_run.json goes, which vouches for some of them
    started = _plain_file(folder / RUN_FILE)
    for relative in listed:
        path = folder / relative
        if plain_path(folder, relative) and path.is_file():
            path.unlink()
            removed.append(relative)
            for parent in path.relative_to(folder).parents:  # folders like adapter/ left empty
                if parent != Path(".") and not any((folder / parent).iterdir()):
                    (folder / parent).rmdir()
    for path in checkpoints:
        shutil.rmtree(path)
        removed.append(path.name)
    dry_run = folder / DRY_RUN_DIR
    if listed and dry_run.is_dir() and not dry_run.is_symlink():
        shutil.rmtree(dry_run)
        removed.append(DRY_RUN_DIR)
    for name in (*(RUN_START_FILES if started else ()), OUTPUTS_FILE):
        path = folder / name
        if _plain_file(path):
            path.unlink()
            removed.append(name)
    if removed:
        log(f"--overwrite_output_dir: removed the earlier run's {len(removed)} files and folders in {folder}")
    return removed


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
