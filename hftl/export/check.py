"""The export check: a PyTorch classifier and its ONNX files run on the same batches; agreement of their
predictions, the largest logit difference, accuracy, and latency at batch 1 and 32 on this machine.

Every variant runs with the same number of threads (``torch.set_num_threads`` and onnxruntime's
``intra_op_num_threads``), on the same inputs, timed as the median of several calls after warm-up.
"""

from __future__ import annotations

import importlib
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["CheckSettings", "VariantResult", "ort_session", "compare", "machine", "markdown_table"]


@dataclass
class CheckSettings:
    """How the check runs.

    Args:
        threads: CPU threads for PyTorch and onnxruntime alike (``None``: ``torch.get_num_threads()``).
        latency_runs: Timed calls per latency figure (their median is reported).
        warmup_runs: Untimed calls before them.
        threshold: Multi-label decision threshold (``None``: single-label argmax).

    Example:
        >>> CheckSettings(threads=2, latency_runs=20)
    """

    threads: int | None = None
    latency_runs: int = 20
    warmup_runs: int = 3
    threshold: float | None = None


@dataclass
class VariantResult:
    """One row of the check's table: a model file (or PyTorch) measured on the check's rows.

    Args:
        name: ``PyTorch fp32``, ``ONNX fp32``, ``ONNX int8``.
        file: The ``.onnx`` file (``None`` for PyTorch).
        accuracy: Share of rows predicted right (multi-label: every label right); ``None`` without labels.
        agreement: Share of rows whose prediction equals PyTorch's.
        max_abs_logit_diff: Largest absolute logit difference to PyTorch, over every row and class.
        latency_ms_batch1: Median milliseconds of one call on one row.
        latency_ms_batch32: Median milliseconds of one call on 32 rows.
        speedup_batch1: PyTorch's batch-1 latency over this one's.
    """

    name: str
    file: str | None
    accuracy: float | None
    agreement: float
    max_abs_logit_diff: float
    latency_ms_batch1: float
    latency_ms_batch32: float
    speedup_batch1: float = 1.0
    extra: dict = field(default_factory=dict)


def ort_session(path: str | Path, threads: int):
    """An onnxruntime CPU session with ``threads`` intra-op threads (one inter-op thread).

    Args:
        path: The ``.onnx`` file.
        threads: Intra-op threads, as many as PyTorch is given.

    Example:
        >>> session = ort_session("out/onnx/model.onnx", threads=2)
    """
    ort = importlib.import_module("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _feed(session, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {item.name: batch[item.name].numpy() for item in session.get_inputs()}


def _ort_runner(session) -> Callable[[dict], np.ndarray]:
    def run(batch: dict[str, torch.Tensor]) -> np.ndarray:
        return session.run(["logits"], _feed(session, batch))[0]

    return run


def _predict(logits: np.ndarray, threshold: float | None) -> np.ndarray:
    if threshold is None:
        return logits.argmax(-1)
    return 1 / (1 + np.exp(-logits)) >= threshold


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a == b if a.ndim == 1 else (a == b).all(-1)


def _median_ms(call: Callable[[dict], object], inputs: Sequence[dict], settings: CheckSettings) -> float:
    for index in range(settings.warmup_runs):
        call(inputs[index % len(inputs)])
    times = []
    for index in range(settings.latency_runs):
        start = time.perf_counter()
        call(inputs[index % len(inputs)])
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def compare(
    model: torch.nn.Module,
    files: dict[str, str | Path],
    batches: Sequence[dict[str, torch.Tensor]],
    labels: np.ndarray | None,
    latency_inputs: tuple[Sequence[dict], Sequence[dict]],
    settings: CheckSettings,
) -> list[VariantResult]:
    """Run ``model`` and each ONNX file on ``batches``; one :class:`VariantResult` each, PyTorch first.

    Args:
        model: The PyTorch classifier (eval mode, CPU).
        files: ``{"ONNX fp32": path, "ONNX int8": path}``.
        batches: Model inputs by name (labels left out), covering every check row in order.
        labels: The rows' true labels (ids; multi-label: 0/1 rows), or ``None``.
        latency_inputs: Inputs of batch 1 (one per timed call, cycled) and of batch 32.
        settings: Threads, timed runs, threshold.

    Example:
        >>> rows = compare(model, {"ONNX fp32": "out/model.onnx"}, batches, labels, (ones, [batch32]), CheckSettings())
    """
    threads = settings.threads or torch.get_num_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():

            def run_torch(batch):
                return model(**batch).logits.float().numpy()

            results = []
            reference = None
            for name in ("PyTorch fp32", *files):
                # one session at a time: an idle session's threads would spin beside the next one's timing
                session = None if name not in files else ort_session(files[name], threads)
                run = run_torch if session is None else _ort_runner(session)
                logits = np.concatenate([run(batch) for batch in batches])
                reference = logits if reference is None else reference
                predictions = _predict(logits, settings.threshold)
                expected = _predict(reference, settings.threshold)
                accuracy = None if labels is None else float(_same(predictions, labels).mean())
                results.append(
                    VariantResult(
                        name=name,
                        file=None if session is None else Path(files[name]).name,
                        accuracy=accuracy,
                        agreement=float(_same(predictions, expected).mean()),
                        max_abs_logit_diff=float(np.abs(logits - reference).max()),
                        latency_ms_batch1=_median_ms(run, latency_inputs[0], settings),
                        latency_ms_batch32=_median_ms(run, latency_inputs[1], settings),
                    )
                )
                del run, session
    finally:
        torch.set_num_threads(previous)
    for row in results:
        row.speedup_batch1 = results[0].latency_ms_batch1 / row.latency_ms_batch1
    return results


def machine(threads: int) -> dict:
    """What the latency was measured on."""
    ort = importlib.import_module("onnxruntime")
    return {
        "cpu": platform.processor() or platform.machine(),
        "threads": threads,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }


def markdown_table(results: Sequence[VariantResult], *, baseline: str = "PyTorch fp32") -> str:
    """The check as a markdown table, one row per variant.

    Args:
        results: From :func:`compare` (several models' rows may be joined).
        baseline: What the speed-up column is relative to (for the header).

    Example:
        >>> print(markdown_table(compare(...)))
    """
    lines = [
        f"| model | accuracy | agreement with PyTorch | max abs logit diff | latency batch 1 (ms) "
        f"| latency batch 32 (ms) | speed-up batch 1 vs {baseline} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results:
        accuracy = "n/a" if row.accuracy is None else f"{row.accuracy:.4f}"
        lines.append(
            f"| {row.name} | {accuracy} | {row.agreement:.2%} | {row.max_abs_logit_diff:.2e} "
            f"| {row.latency_ms_batch1:.1f} | {row.latency_ms_batch32:.1f} | {row.speedup_batch1:.2f}x |"
        )
    return "\n".join(lines)
