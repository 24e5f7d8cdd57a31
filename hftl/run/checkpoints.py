"""Checkpoints a resume can trust.

Trainer writes ``checkpoint-<step>`` folders file by file, so a crash leaves a partial folder that
``get_last_checkpoint`` would still pick, and a missing optimizer file makes Trainer restart the
optimizer silently. hftl writes a manifest last (size and SHA-256 of every file, renamed into place
atomically): a folder is complete only when its manifest is there and every file matches it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .._log import log
from ..errors import CheckpointError
from .faults import fault_point
from .identity import RUN_FILE

__all__ = [
    "MANIFEST",
    "resume_checkpoint",
    "unsafe_checkpoint_error",
    "write_manifest",
    "checkpoint_problem",
    "newest_complete_checkpoint",
    "check_checkpoint",
    "remove_incomplete_checkpoints",
    "rotate_checkpoints",
]

MANIFEST = "hftl_checkpoint.json"
_TEMPORARY = f".{MANIFEST}.tmp"
# Without these Trainer resumes with a fresh optimizer or schedule, without saying so. The optimizer state
# takes each of Trainer's forms: optimizer.pt (one process, DDP), optimizer.bin (FSDP, full state dict),
# optimizer_0_rank<r>.bin or an optimizer_0/ folder (FSDP, sharded), or DeepSpeed's global_step<n>/ folder,
# which holds the schedule too (so it writes no scheduler.pt).
_OPTIMIZER = re.compile(
    r"^(optimizer\.(pt|bin)|optimizer_0_rank\d+\.bin|optimizer_0/.+|global_step\d+/.*optim_states\.pt)$"
)
_DEEPSPEED_STATE = re.compile(r"^global_step\d+/")
_STEP = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


@dataclass
class Checkpoint:
    path: Path
    step: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
        os.fsync(file.fileno())  # the bytes reach the disk before the manifest vouches for them
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    """The checkpoint's plain files; a link is never vouched for (rglob doesn't descend into linked folders)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and p.name not in (MANIFEST, _TEMPORARY)
    )


def write_manifest(folder: str | Path, world_size: int, step: int | None = None) -> None:
    """Mark ``folder`` complete: record every file's size and hash, then rename the manifest into place."""
    folder = Path(folder)
    files = {
        str(path.relative_to(folder)): {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        for path in _files(folder)
    }
    temporary = folder / _TEMPORARY
    with open(temporary, "w") as file:
        json.dump({"format": 1, "world_size": world_size, "files": files}, file, indent=1)
        file.flush()
        os.fsync(file.fileno())
    fault_point("save:manifest", step)
    os.replace(temporary, folder / MANIFEST)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def read_manifest(folder: str | Path) -> dict | None:
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _shape_problem(manifest) -> str | None:
    """What is wrong with a manifest that parsed as JSON but isn't what :func:`write_manifest` writes."""
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not isinstance(manifest.get("world_size", 1), int):
        return f"its manifest {MANIFEST} is not an hftl manifest (no files table)"
    for name, entry in files.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("bytes"), int)
            and isinstance(entry.get("sha256"), str)
        ):
            return f"its manifest {MANIFEST} has no size and checksum for {name[:80]}"
    return None


def _missing_state(names) -> str | None:
    """The resume state a checkpoint with these files (paths inside it) lacks, named as a one-process run
    writes it, or None."""
    names = set(names)
    if "trainer_state.json" not in names:
        return "trainer_state.json"
    if not any(_OPTIMIZER.match(name) for name in names):
        return "optimizer.pt"
    if "scheduler.pt" not in names and not any(_DEEPSPEED_STATE.match(name) for name in names):
        return "scheduler.pt"
    return None


def _outside(folder: Path, name: str) -> bool:
    """``name`` (from a manifest) leaves ``folder``: absolute, ``..``, or through a symbolic link."""
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or ".." in parts:
        return True
    return any(folder.joinpath(*parts[: index + 1]).is_symlink() for index in range(len(parts)))


def checkpoint_problem(folder: str | Path) -> str | None:
    """What is wrong with checkpoint ``folder`` (``None``: complete and intact)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        why = "unreadable" if (folder / MANIFEST).exists() else "missing: the save was interrupted"
        return f"its manifest {MANIFEST} is {why}"
    shape = _shape_problem(manifest)
    if shape is not None:
        return shape
    files = manifest["files"]
    for name in files:
        if _outside(folder, name):
            shown = name if len(name) <= 40 else "..." + name[-37:]
            return f"its manifest names {shown!r}, outside the folder or behind a link"
    missing = _missing_state(files)  # a manifest that leaves one out would let Trainer restart it silently
    if missing:
        return f"its manifest does not list {missing}, so training would restart it from scratch"
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != expected["bytes"]:
            return f"{name} has {size} bytes, {expected['bytes']} were written (truncated or replaced)"
        if _sha256(path) != expected["sha256"]:
            return f"{name} does not match its checksum (corrupted)"
    return None


def _checkpoints(output_dir: str | Path, say_links: bool = False) -> list[Checkpoint]:
    """``checkpoint-<step>`` folders in ``output_dir``, oldest step first. A symbolic link named like one
    is left out: hftl never resumes from it, counts it, or deletes through it."""
    found = []
    for path in Path(output_dir).iterdir() if Path(output_dir).is_dir() else ():
        match = _STEP.match(path.name)
        if match and path.is_symlink():
            if say_links:
                log(f"skipping {path.name}: a symbolic link, which hftl never resumes from or deletes")
        elif match and path.is_dir():
            found.append(Checkpoint(path, int(match.group(1))))
    return sorted(found, key=lambda checkpoint: checkpoint.step)


def newest_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The newest intact checkpoint in ``output_dir``; each newer one skipped is named with its problem."""
    for checkpoint in reversed(_checkpoints(output_dir, say_links=True)):
        problem = checkpoint_problem(checkpoint.path)
        if problem is None:
            return str(checkpoint.path)
        log(f"skipping {checkpoint.path.name}: {problem}; falling back to the previous checkpoint")
    return None


def check_checkpoint(folder: str | Path, world_size: int, allow_changed: bool) -> None:
    """Refuse to resume from ``folder`` when it is damaged, incomplete or from another process count."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None and not (folder / MANIFEST).exists():  # written by plain Trainer or older hftl
        missing = _missing_state(str(path.relative_to(folder)) for path in _files(folder))
        if missing:
            raise CheckpointError(
                f"Checkpoint {folder} has no {missing}, so training would restart it from scratch; pass "
                "a complete checkpoint, or --resume_from_checkpoint auto to pick the newest complete one."
            )
        log(f"{folder.name} has no {MANIFEST} (not written by hftl): its files can't be verified")
        return
    problem = checkpoint_problem(folder)
    if problem is not None:
        raise CheckpointError(
            f"Checkpoint {folder} is unusable: {problem}. Pass an earlier checkpoint, or "
            "--resume_from_checkpoint auto for the newest complete one."
        )
    written_by = manifest.get("world_size", 1)
    if written_by != world_size and not allow_changed:
        raise CheckpointError(
            f"Checkpoint {folder} was written by {written_by} process(es) and this run has {world_size}: "
            "the batch order and random streams would differ from the interrupted run. Launch with "
            f"{written_by} process(es), or pass --allow_changed_resume to continue anyway."
        )


def resume_checkpoint(
    value: str | None, output_dir: str | None, world_size: int, allow_changed: bool
) -> str | None:
    """``--resume_from_checkpoint``: a checkpoint folder (checked), or ``auto`` for the newest complete
    one in ``output_dir`` (``None`` when there is none yet: a first start)."""
    if not value:
        return None
    if value == "auto":
        if not output_dir or not Path(output_dir).is_dir():
            raise CheckpointError(
                "--resume_from_checkpoint auto needs --output_dir pointing at the interrupted run."
            )
        remove_incomplete_checkpoints(output_dir)
        chosen = newest_complete_checkpoint(output_dir)
        if chosen is None and _checkpoints(output_dir):
            raise CheckpointError(
                f"No checkpoint in {output_dir} is intact (see above); pass one with "
                "--resume_from_checkpoint <dir>, or start again with a new --output_dir."
            )
        if chosen is None:
            log(f"no checkpoint in {output_dir} yet: starting from the beginning")
            return None
        log(f"resuming from {chosen}")
        value = chosen
    elif not Path(value).is_dir():
        raise CheckpointError(
            f"--resume_from_checkpoint '{value}' is not a directory; pass a checkpoint-<step> folder or auto."
        )
    check_checkpoint(value, world_size, allow_changed)
    return value


def remove_incomplete_checkpoints(output_dir: str | Path) -> None:
    """Delete checkpoint folders a crash left without a manifest (a save or a deletion cut short) in a
    run hftl started: they are its own leftovers, and Trainer would count them when it rotates."""
    if not (Path(output_dir) / RUN_FILE).is_file():  # not an hftl run: leave its folders alone
        return
    for checkpoint in _checkpoints(output_dir):
        if not (checkpoint.path / MANIFEST).exists():
            log(f"removing {checkpoint.path.name}: an interrupted save or deletion left it incomplete")
            shutil.rmtree(checkpoint.path, ignore_errors=True)


def rotate_checkpoints(
    output_dir: str | Path, keep: int | None, protected: list[str], step: int | None = None
) -> None:
    """Trainer's ``save_total_limit`` rotation, crash-safe: a checkpoint loses its manifest (atomically)
    before its files, so a deletion cut short leaves a folder marked incomplete, never a fake complete one."""
    if not keep or keep <= 0:
        return
    checkpoints = _checkpoints(output_dir)
    keep_paths = {Path(path).resolve() for path in protected if path}
    removable = [c for c in checkpoints if c.path.resolve() not in keep_paths]
    excess = len(checkpoints) - max(keep, len(checkpoints) - len(removable))
    for checkpoint in removable[: max(excess, 0)]:
        (checkpoint.path / MANIFEST).unlink(missing_ok=True)
        fault_point("save:rotation", step)
        shutil.rmtree(checkpoint.path, ignore_errors=True)


def unsafe_checkpoint_error(folder: str, error: Exception) -> CheckpointError:
    """Trainer loads optimizer, scheduler and RNG files with ``torch.load(weights_only=True)``, which
    refuses anything but tensors and plain containers; say so in one line instead of torch's page."""
    detail = next((line.strip() for line in str(error).splitlines() if "GLOBAL" in line), "")
    return CheckpointError(
        f"Checkpoint {folder} holds a file that is not plain tensors and was not loaded (code in a pickle "
        f"is never run{': ' + detail[:120] if detail else ''}); resume from a checkpoint you trust."
    )
