"""``hftl export``: a saved classifier to ONNX (and int8), then checked against PyTorch on its test split.

The folder it writes serves on its own: ``model.onnx`` (``model_int8.onnx``), ``config.json`` (labels,
multi-label threshold) and the tokenizer or image-processor files, with ``export_check.md`` /
``export_check.json`` (the check) and ``hftl_export.json`` (the files hftl wrote there).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
from dataclasses import dataclass
from itertools import cycle, islice
from pathlib import Path

import numpy as np
import torch

from .._log import log
from ..errors import ConfigError
from ..inference.saved import SavedModel, load_saved_model
from ..tasks import get_task, task_names
from ._errors import ExportError
from ._files import ExportFolder
from .check import CheckSettings, VariantResult, compare, machine, markdown_table
from .onnx import OPSET, example_inputs, export_onnx, quantize_int8, require_export_packages

__all__ = ["FORMATS", "QUANTIZATIONS", "ExportResult", "export_model", "export_command", "check_inputs"]

FORMATS = ("onnx",)
QUANTIZATIONS = ("dynamic-int8",)
CHECK_FILES = ("export_check.md", "export_check.json")
_FILES = {"ONNX fp32": "model.onnx", "ONNX int8": "model_int8.onnx"}
_BATCH = 32


@dataclass
class ExportResult:
    """What :func:`export_model` returns.

    Args:
        output_dir: The export folder.
        files: The ONNX files written, by variant (``{"ONNX fp32": path, ...}``).
        results: The check, one row per variant (PyTorch first).
        table: The check as a markdown table (also in ``export_check.md``).
        check: Everything in ``export_check.json``.
    """

    output_dir: Path
    files: dict[str, Path]
    results: list[VariantResult]
    table: str
    check: dict


def _options(format: str, quantize: str | None, min_agreement: float, min_agreement_int8: float, **counts):
    if format not in FORMATS:
        raise ConfigError(f"Unknown --format '{format}'; hftl export writes: {', '.join(FORMATS)}.")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(
            f"Unknown --quantize '{quantize}'; choose {', '.join(QUANTIZATIONS)}, or leave it out for fp32 only."
        )
    for name, value in (("min_agreement", min_agreement), ("min_agreement_int8", min_agreement_int8)):
        if not 0 <= value <= 1:
            raise ConfigError(f"--{name} must lie in [0, 1] (a share of the check rows), not {value}.")
    for name, value in counts.items():
        if value is not None and value < 1:
            raise ConfigError(f"--{name} must be at least 1, not {value}.")


def check_inputs(saved: SavedModel, data: str | None, split: str, max_samples: int | None):
    """The check's rows as model inputs: batches of 32 (labels taken out), the labels, and the latency
    inputs (single rows, one per timed call, and one batch of 32, rows repeated when fewer).

    Args:
        saved: The loaded model (:func:`hftl.inference.saved.load_saved_model`).
        data: Labelled data to check on, or ``None`` for the run's own test split.
        split: The split of ``data``.
        max_samples: Check on at most this many rows.

    Example:
        >>> batches, labels, latency = check_inputs(load_saved_model("outputs/run"), None, "test", 200)
    """
    rows = saved.run_test_split(data, split)
    if max_samples is not None and len(rows) > max_samples:
        rows = rows.select(range(max_samples))
    inputs = saved.rows_to_inputs(rows)
    collate = saved.collator()
    items = [inputs[index] for index in range(len(inputs))]
    batches, labels = [], []
    for start in range(0, len(items), _BATCH):
        batch = dict(collate(items[start : start + _BATCH]))
        if "labels" in batch:
            labels.append(batch.pop("labels").numpy())
        batches.append(batch)
    singles = [dict(collate([item])) for item in items[:20]]
    full = dict(collate(list(islice(cycle(items), _BATCH))))
    for batch in (*singles, full):
        batch.pop("labels", None)
    label_array = np.concatenate(labels) if labels else None
    if label_array is not None and label_array.ndim == 2:
        label_array = label_array >= 0.5  # multi-hot rows
    return batches, label_array, (singles, [full])


def _only(batches, names):
    return [{name: batch[name] for name in names} for batch in batches]


def export_model(
    model: str | Path,
    *,
    format: str = "onnx",
    quantize: str | None = None,
    output_dir: str | Path | None = None,
    data: str | None = None,
    split: str = "test",
    min_agreement: float = 0.99,
    min_agreement_int8: float = 0.95,
    max_check_samples: int | None = None,
    threads: int | None = None,
    latency_runs: int = 20,
    trust_remote_code: bool = False,
) -> ExportResult:
    """Export a saved text or image classifier to ONNX and check it against PyTorch.

    Args:
        model: An hftl output folder, a merged or adapter folder, or a Hub id (then ``output_dir`` is needed).
        format: ``"onnx"``.
        quantize: ``"dynamic-int8"`` also writes ``model_int8.onnx``.
        output_dir: The export folder (default ``MODEL/onnx``); files hftl did not write are never replaced.
        data: Labelled data to check on (default: the run's own test split).
        split: The split of ``data``.
        min_agreement: Refuse ``model.onnx`` when a smaller share of rows gets PyTorch's prediction.
        min_agreement_int8: The same for ``model_int8.onnx``.
        max_check_samples: Check on at most this many rows.
        threads: CPU threads for PyTorch and onnxruntime in the latency check (default: torch's).
        latency_runs: Timed calls per latency figure (median reported, after 3 warm-up calls).
        trust_remote_code: Run code shipped with the model.

    Raises:
        ExportError: The model can't be exported, or an export disagrees with PyTorch more than allowed (the
            refused file is removed; the check files stay, saying why).

    Example:
        >>> result = export_model("outputs/minilm-bbc", quantize="dynamic-int8")
        >>> print(result.table)
    """
    _options(format, quantize, min_agreement, min_agreement_int8, max_check_samples=max_check_samples,
             threads=threads, latency_runs=latency_runs)  # fmt: skip
    require_export_packages()
    if output_dir is None and not Path(model).expanduser().is_dir():
        raise ConfigError(
            f"No model folder '{model}': pass an hftl output folder (its export goes to MODEL/onnx), or a Hub "
            "id with --output_dir."
        )
    saved = load_saved_model(model, trust_remote_code=trust_remote_code)
    if not saved.task.exports_to_onnx:
        supported = [name for name in task_names() if get_task(name).exports_to_onnx]
        raise ExportError(
            f"hftl export supports {' and '.join(supported)} models; {model} is a {saved.task.name} model."
        )
    folder = ExportFolder(output_dir if output_dir is not None else saved.path / "onnx")
    variants = {"ONNX fp32": _FILES["ONNX fp32"]}
    if quantize:
        variants["ONNX int8"] = _FILES["ONNX int8"]
    processor = saved.processor
    if saved.task.modality == "text" and saved.max_length:
        # the folder's tokenizer truncates (truncation=True) where the run's inputs did
        processor = copy.deepcopy(processor)
        processor.model_max_length = saved.max_length
    staged = folder.stage_processor(processor, saved.model.config)
    names = [*variants.values(), *staged, *CHECK_FILES]
    try:
        folder.check_names(names)
        batches, labels, latency = check_inputs(saved, data, split, max_check_samples)
        # --- export ------------------------------------------------------------------------------
        folder.remove_stale(names)
        inputs = example_inputs(saved.model, saved.processor, saved.task.modality)
        axes = "batch and sequence" if saved.task.modality == "text" else "batch"
        log(f"exporting {type(saved.model).__name__} to ONNX (opset {OPSET}, dynamic {axes} axes)")
        fp32 = folder.added(variants["ONNX fp32"])
        export_onnx(saved.model, inputs, fp32)
        files = {"ONNX fp32": fp32}
        if quantize:
            files["ONNX int8"] = folder.added(variants["ONNX int8"])
            quantize_int8(fp32, files["ONNX int8"])
    except BaseException:
        folder.discard_staged()  # a refusal or a failed export leaves no staged files behind
        raise
    folder.take_staged()

    # --- check -----------------------------------------------------------------------------------
    threshold = saved.threshold if saved.labels.multi_label else None
    if saved.labels.multi_label and threshold is None:
        threshold = 0.5
        log("the model records no multi-label threshold: the check predicts at 0.5")
    settings = CheckSettings(threads=threads or torch.get_num_threads(), latency_runs=latency_runs,
                             threshold=threshold)  # fmt: skip
    log(f"checking on {sum(len(next(iter(b.values()))) for b in batches)} rows, {settings.threads} threads")
    names_in = list(inputs)
    results = compare(
        saved.model, files, _only(batches, names_in), labels,
        (_only(latency[0], names_in), _only(latency[1], names_in)), settings,
    )  # fmt: skip
    if labels is not None and len(labels) != sum(len(next(iter(b.values()))) for b in batches):
        for row in results:  # long documents: a row per window, not per labelled document
            row.accuracy = None
    minimum = {"ONNX fp32": min_agreement, "ONNX int8": min_agreement_int8}
    refused = [row for row in results[1:] if row.agreement < minimum[row.name]]
    table = markdown_table(results)
    check = {
        "model": str(saved.path),
        "task": saved.task.name,
        "check_data": data or f"the run's {split} split",
        "rows": len(labels) if labels is not None else None,
        "opset": OPSET,
        "threshold": threshold,
        "min_agreement": {name: minimum[name] for name in files},
        "passed": not refused,
        "refused": [row.name for row in refused],
        "machine": machine(settings.threads),
        "latency": f"median of {latency_runs} calls after {settings.warmup_runs} warm-up calls",
        "results": [dataclasses.asdict(row) for row in results],
    }
    _write_check(folder, table, check)
    for row in refused:
        folder.remove(_FILES[row.name])
        files.pop(row.name)
    folder.record(source=str(saved.path), task=saved.task.name, opset=OPSET, max_length=saved.max_length,
                  passed=not refused)  # fmt: skip
    if refused:
        log(f"export check:\n{table}")
        worst = refused[0]
        raise ExportError(
            f"{worst.name} agrees with PyTorch on {worst.agreement:.2%} of {check['rows'] or 'the'} check rows, "
            f"below --min_agreement{'_int8' if 'int8' in worst.name else ''} {minimum[worst.name]}: "
            f"{', '.join(_FILES[row.name] for row in refused)} removed; see {folder.folder / CHECK_FILES[0]}."
        )
    log(f"exported to {folder.folder}")
    return ExportResult(output_dir=folder.folder, files=files, results=results, table=table, check=check)


def _write_check(folder: ExportFolder, table: str, check: dict) -> None:
    verdict = "passed" if check["passed"] else f"REFUSED ({', '.join(check['refused'])} removed)"
    machine_line = ", ".join(f"{key} {value}" for key, value in check["machine"].items())
    text = (
        f"# Export check: {verdict}\n\n{table}\n\n"
        f"Checked on {check['rows'] or '?'} rows of {check['check_data']}; ONNX opset {check['opset']}. "
        f"Agreement: share of rows whose prediction equals PyTorch's (minimum "
        f"{', '.join(f'{k} {v}' for k, v in check['min_agreement'].items())}). Latency: {check['latency']}, "
        f"on {machine_line}.\n"
    )
    folder.added(CHECK_FILES[0]).write_text(text)
    folder.added(CHECK_FILES[1]).write_text(json.dumps(check, indent=1) + "\n")


def export_command(args: argparse.Namespace) -> None:
    """``hftl export``: :func:`export_model` with the command's options; prints the check table."""
    options = {key: value for key, value in vars(args).items() if key != "model"}
    result = export_model(args.model, **options)
    print(result.table)
    print(f"\nwritten to {result.output_dir}: {', '.join(path.name for path in result.files.values())}")
