"""Runtime settings a plain script gets wrong on CPU."""

from __future__ import annotations

import os

import torch

from .._log import log

__all__ = ["use_all_cpu_cores", "available_cores", "default_dataloader_workers"]


def use_all_cpu_cores(world_size: int) -> None:
    """Undo ``accelerate launch``'s ``OMP_NUM_THREADS=1`` on a machine without a GPU.

    Launched without ``--cpu`` on a GPU-less machine, accelerate exports ``OMP_NUM_THREADS=1``, so
    training uses one core (measured here: half the speed on 2 cores). hftl then gives each process
    its share of the physical cores. ``HFTL_NUM_THREADS`` sets the count explicitly.
    """
    explicit = os.environ.get("HFTL_NUM_THREADS")
    if explicit:
        torch.set_num_threads(int(explicit))
        return
    launched_by_accelerate = any(key.startswith("ACCELERATE_") for key in os.environ)
    if torch.cuda.is_available() or not launched_by_accelerate or os.environ.get("OMP_NUM_THREADS") != "1":
        return
    import psutil

    share = max((psutil.cpu_count(logical=False) or os.cpu_count() or 1) // max(world_size, 1), 1)
    if share > torch.get_num_threads():
        torch.set_num_threads(share)
        log(
            f"accelerate launch set OMP_NUM_THREADS=1; using {share} CPU threads (HFTL_NUM_THREADS overrides)"
        )


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_dataloader_workers(world_size: int) -> int:
    """Dataloader workers per process for on-the-fly image decoding: half the process's share of the
    cores, at least 1 (so decoding never runs on the training process) and at most 4."""
    share = available_cores() // max(world_size, 1)
    return min(4, max(1, share // 2))
