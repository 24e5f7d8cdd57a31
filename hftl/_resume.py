"""What a run is, recorded at its start, so a resume can refuse to continue a different run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import ConfigError

__all__ = ["RUN_FILE", "run_identity", "check_same_run", "record_run"]

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


def check_same_run(output_dir: str | Path, identity: dict, allow_changed: bool) -> None:
    """Refuse to resume when the run recorded in ``output_dir`` differs from this one (one line naming
    what changed), unless ``allow_changed``."""
    path = Path(output_dir) / RUN_FILE
    if not path.is_file():
        return
    recorded = json.loads(path.read_text())
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
