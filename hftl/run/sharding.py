"""Which sharding engine a run uses (FSDP, DeepSpeed), read the way Accelerate reads it, and the mixed
precision an ``accelerate launch`` config chose.

Sharding reaches a run two ways: Trainer flags (``--fsdp``, ``--deepspeed``) or an accelerate config,
which ``accelerate launch`` turns into environment variables (``ACCELERATE_USE_FSDP``,
``ACCELERATE_USE_DEEPSPEED``) that Accelerate reads when the run's state is built. hftl's checks read both,
so a sharded run chosen in a config meets the same refusals as one chosen by flag. Written here because
neither Trainer nor Accelerate exposes the engine before its state is built, which is after the model
has loaded; the checks must run before any compute.
"""

from __future__ import annotations

import os

import torch

__all__ = ["accelerate_precision", "on_cpu_only", "run_precision", "sharding"]

# accelerate launch's flags as environment variables (accelerate/utils/launch.py)
_USE_FSDP, _USE_DEEPSPEED, _USE_CPU = "ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_CPU"
_MIXED_PRECISION = "ACCELERATE_MIXED_PRECISION"


def _env_true(name: str) -> bool:
    return os.environ.get(name, "false").strip().lower() in ("1", "true", "yes")


def sharding(training_args) -> str | None:
    """How the run shards its parameters, named as the user chose it (for error lines), or None.

    Example:
        >>> from types import SimpleNamespace
        >>> sharding(SimpleNamespace(fsdp="full_shard", deepspeed=None))
        '--fsdp'
    """
    if getattr(training_args, "deepspeed", None):
        return "--deepspeed"
    if getattr(training_args, "fsdp", None):
        return "--fsdp"
    if _env_true(_USE_DEEPSPEED):
        return "DeepSpeed (from the accelerate config)"
    if _env_true(_USE_FSDP):
        return "FSDP (from the accelerate config)"
    return None


def on_cpu_only(training_args) -> bool:
    """Whether the run trains on CPU: ``--use_cpu``, ``accelerate launch --cpu``, or no accelerator here."""
    if getattr(training_args, "use_cpu", False) or _env_true(_USE_CPU):
        return True
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "is_available"):
        # MPS is an accelerator to torch, but Accelerate shards on none of its kind
        return not accelerator.is_available() or accelerator.current_accelerator().type == "mps"
    return not torch.cuda.is_available()


def accelerate_precision() -> str | None:
    """The mixed precision an ``accelerate launch`` config or flag chose: ``"bf16"``, ``"fp16"``, or None.

    ``"no"`` counts as not chosen: accelerate launch exports it whenever nothing was chosen, so it can't
    be told apart from a config that asks for fp32 (``--bf16 false`` does that).
    """
    value = os.environ.get(_MIXED_PRECISION, "").strip().lower()
    return value if value in ("bf16", "fp16") else None


def run_precision(training_args) -> str:
    """The precision the run trains in: the flags, else what accelerate launch chose (as Trainer reads it)."""
    if training_args.bf16:
        return "bf16"
    if training_args.fp16:
        return "fp16"
    return {"bf16": "bf16", "fp16": "fp16"}.get(getattr(training_args, "mixed_precision", None), "fp32")
