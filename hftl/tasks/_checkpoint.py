"""Reading a local checkpoint's tensor shapes without loading its weights."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open

from ..errors import ModelNotFoundError, first_line

__all__ = ["safetensors_shapes"]


def safetensors_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a local safetensors checkpoint, read from the file headers only."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        return {}
    shapes = {}
    for name in files:
        try:
            with safe_open(str(folder / name), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise ModelNotFoundError(
                f"Weights file '{folder / name}' can't be read ({first_line(exc)[:120]}); "
                "download or save the model again."
            ) from None
    return shapes
