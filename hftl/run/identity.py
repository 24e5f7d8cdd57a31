"""What a run is, recorded at its start, so a resume can refuse to continue a different run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .._log import log
from ..errors import CheckpointError, ConfigError

__all__ = ["RUN_FILE", "run_identity", "check_same_run", "recorded_run", "record_run"]

RUN_FILE = "hftl_run.json"


def run_identity(model: str, task: str, method: str, labels: list[str], train) -> dict:
    """The parts of a run that a resumed optimizer state only fits: model, task, method, labels, and a
    fingerprint of the training split (its size, its labels and its text or path columns; image pixels
    are not read, they would cost a pass over the data)."""
    digest = hashlib.sha256(
        json.dumps(list(train["labels"]), default=str).encode()
    )  # a Column's str() is cut
    for name, feature in train.features.items():
        if name != "labels" and getattr(feature, "dtype", None) in ("string", "large_string"):
            digest.update(json.dumps(list(train[name])).encode())
    return {
        "model": model,
        "task": task,
        "method": method,
        "labels": list(labels),
        "train_rows": len(train),
        "train_data_sha256": digest.hexdigest()[:16],
    }


def recorded_run(checkpoint: str | Path) -> dict | None:
    """The run identity a checkpoint was written by: its own copy of ``hftl_run.json`` (in its manifest),
    else the one of the folder holding it (checkpoints of older hftl); ``None`` when neither exists."""
    checkpoint = Path(checkpoint)
    for path in (checkpoint / RUN_FILE, checkpoint.parent / RUN_FILE):
        if path.is_file():
            try:
                recorded = json.loads(path.read_text())
            except (OSError, ValueError):
                recorded = None
            if not isinstance(recorded, dict):
                raise CheckpointError(
                    f"{path} is unreadable, so the run that wrote {checkpoint.name} can't be checked; resume "
                    "from another checkpoint, or start again with a new --output_dir."
                )
            return recorded
    return None


def check_same_run(checkpoint: str | Path, identity: dict, allow_changed: bool) -> None:
    """Refuse to resume from ``checkpoint`` when the run that wrote it differs from this one (one line
    naming what changed), unless ``allow_changed``."""
    recorded = recorded_run(checkpoint)
    if recorded is None:
        log(f"{Path(checkpoint).name} records no {RUN_FILE}: the run that wrote it can't be checked")
        return
    changed = [key for key in identity if key in recorded and recorded[key] != identity[key]]
    if not changed or allow_changed:
        return

    def show(value):
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        return text if len(text) <= 60 else text[:57] + "..."

    what = "; ".join(f"{key} {show(recorded[key])} -> {show(identity[key])}" for key in changed)
    raise ConfigError(
        f"--resume_from_checkpoint would continue a different run ({what}); resume with the original options, "
        "use a new --output_dir, or pass --allow_changed_resume to continue anyway."
    )


def record_run(output_dir: str | Path, identity: dict) -> None:
    path = Path(output_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / RUN_FILE).write_text(json.dumps(identity, indent=2, ensure_ascii=False))
