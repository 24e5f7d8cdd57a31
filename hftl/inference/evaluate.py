"""``hftl evaluate``: a saved model scored on labelled data (or the run's own test split) with the run's
own metrics, per-class report and plots, written into a folder of the user's choice."""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from .._log import log
from ..errors import ConfigError
from ..run.run_files import RESULTS_FILE
from ..tasks import RegressionTask
from ..tasks._regression_metrics import RegressionMetrics, StandardisedLoss
from ._run import DEFAULT_EVAL_BATCH, make_trainer
from .saved import SavedModel, load_saved_model

__all__ = ["EvaluationResult", "evaluate", "run_command", "EVALUATION_FILE"]

# what an evaluation folder holds besides the results: its own list of files (so a rerun may replace them)
EVALUATION_FILE = "hftl_evaluation.json"


@dataclass
class EvaluationResult:
    """What :func:`evaluate` returns.

    Args:
        metrics: The scores, keyed as a training run's ``all_results.json`` keys them (``test_accuracy``,
            ``test_loss``, ...; ``<split>_*`` for another split), with ``<split>_samples`` and, for
            multi-label, ``threshold``.
        report: The task's report (classification: scikit-learn's per-class report) as text.
        output_dir: The folder the results, report and plots were written to.
        files: The files written there.
    """

    metrics: dict
    report: str
    output_dir: Path
    files: list[str] = field(default_factory=list)


def _check_output_dir(output_dir: str | Path, model_dir: Path | None) -> Path:
    """The folder to write, refused (one line) when it is or lies in the model folder, is a file, or holds
    files an hftl evaluation didn't write."""
    folder = Path(output_dir).expanduser().resolve()
    if model_dir is not None and (folder == model_dir or model_dir in folder.parents):
        raise ConfigError(
            f"--output_dir {output_dir} is inside the model folder {model_dir}, which evaluate never writes to; "
            "pick a folder of its own."
        )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output_dir {output_dir} is a file; pick a folder.")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / EVALUATION_FILE).is_file():
        raise ConfigError(
            f"--output_dir {output_dir} holds files an hftl evaluation didn't write; pick an empty or new folder."
        )
    return folder


def _loss_and_metrics(saved: SavedModel, threshold: float | None):
    """``(compute_metrics, preprocess_logits, class_loss)`` as the run's test evaluation had them: the
    tuned multi-label threshold; regression's metrics and loss on a head that gives original units; the
    run's class weights or label smoothing (from its training split)."""
    task, labels = saved.task, saved.labels
    compute_metrics, preprocess = task.metrics(labels)
    if labels.multi_label:
        compute_metrics.threshold = threshold
    if isinstance(task, RegressionTask):  # what RegressionTask.after_training switched the run to
        return RegressionMetrics(labels, folded=True), preprocess, StandardisedLoss(labels, folded=True)
    config = saved.run_config or {}
    weights = str(config.get("class_weights", "none")).strip().lower()
    smoothing = float(config.get("label_smoothing_factor") or 0.0)
    if weights == "none" and not smoothing:
        return compute_metrics, preprocess, None
    if not config.get("dataset"):
        log(
            "the run trained with class weights or label smoothing, without its data: the loss is the model's own"
        )
        return compute_metrics, preprocess, None
    train = saved.run_test_split(None, "train")  # class weights come from the run's training counts
    options = SimpleNamespace(
        class_weights=config.get("class_weights", "none"), label_smoothing_factor=smoothing
    )
    return compute_metrics, preprocess, task.plan_loss(options, train, labels)


def _write_json(path: Path, values) -> None:
    path.write_text(json.dumps(values, indent=2, sort_keys=isinstance(values, dict)) + "\n", encoding="utf-8")


def evaluate(
    model: str | Path | SavedModel,
    data: str | None = None,
    *,
    output_dir: str | Path,
    split: str = "test",
    batch_size: int | None = None,
    threshold: float | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    trust_remote_code: bool = False,
) -> EvaluationResult:
    """Score a saved model on labelled data, as its training run scored its test split.

    Writes ``all_results.json`` (the metrics), ``<split>_report.json`` (the task's report), the task's
    plots (``confusion_matrix.png`` for classification) and ``hftl_evaluation.json`` into ``output_dir``.

    Args:
        model: An hftl output folder, a merged or adapter folder, a Hub id, or a loaded :class:`SavedModel`.
        data: Labelled data (a CSV/TSV/JSON/JSONL/parquet file, a folder, a built-in or Hub dataset); None:
            the run's own split, re-created from its ``hftl_config.yaml``.
        output_dir: Where to write (created; refused if it holds files an hftl evaluation didn't write, or
            lies in the model folder).
        split: The split of ``data`` (a single file is all one split).
        batch_size: Rows per forward pass (default: the run's evaluation batch size, else 8).
        threshold: Multi-label decision threshold (default: the one the run tuned).
        text_column: ``data``'s text column(s) when not the run's (comma-separated for a pair).
        label_column: ``data``'s label column when not inferred.
        trust_remote_code: Run code shipped with a Hub model (off unless you trust it).

    Example:
        >>> result = evaluate("outputs/minilm-bbc", output_dir="eval/minilm-bbc")
        >>> result.metrics["test_accuracy"]
    """
    local = Path(str(model)).expanduser() if not isinstance(model, SavedModel) else model.path
    folder = _check_output_dir(output_dir, local.resolve() if local.is_dir() else None)
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise ConfigError(f"--threshold must be between 0 and 1 (got {threshold}).")
    saved = (
        model
        if isinstance(model, SavedModel)
        else load_saved_model(model, trust_remote_code=trust_remote_code)
    )
    folder = _check_output_dir(output_dir, saved.path.resolve())
    labels = saved.labels
    threshold = threshold if threshold is not None else saved.threshold
    if labels.multi_label and threshold is None:
        raise ConfigError(
            "This multi-label model has no saved decision threshold (config.json multi_label_threshold); pass "
            "--threshold T (e.g. 0.5)."
        )
    rows = saved.run_test_split(data, split, text_column=text_column, label_column=label_column)
    inputs = saved.rows_to_inputs(rows)
    compute_metrics, preprocess, class_loss = _loss_and_metrics(saved, threshold)
    batch = batch_size or int(
        (saved.run_config or {}).get("per_device_eval_batch_size") or DEFAULT_EVAL_BATCH
    )
    with tempfile.TemporaryDirectory(prefix="hftl-evaluate-") as scratch:
        trainer = make_trainer(
            saved, batch, scratch, compute_metrics=compute_metrics, preprocess_logits_for_metrics=preprocess
        )
        trainer.class_loss = class_loss
        output = trainer.predict(inputs, metric_key_prefix=split)
    # Trainer's first-call model_preparation_time is no score, and a run's all_results.json lacks it
    metrics = {
        key: value for key, value in output.metrics.items() if not key.endswith("_model_preparation_time")
    }
    metrics[f"{split}_samples"] = len(rows)
    if labels.multi_label:
        metrics["threshold"] = threshold
    predictions = saved.task.test_predictions(output, metrics, labels)
    report, table = saved.task.report(predictions, output.label_ids, labels)
    folder.mkdir(parents=True, exist_ok=True)
    previous = folder / EVALUATION_FILE
    if previous.is_file():  # a rerun replaces what the last evaluation wrote here
        for name in json.loads(previous.read_text(encoding="utf-8")).get("files", []):
            target = folder / name
            if "/" not in name and target.is_file() and not target.is_symlink():
                target.unlink()
    report_file = f"{split}_report.json"
    _write_json(folder / RESULTS_FILE, metrics)
    _write_json(folder / report_file, table)
    plots = [name for name, _ in saved.task.plots(folder, predictions, output.label_ids, labels)]
    files = [RESULTS_FILE, report_file, *plots]
    source = "the run's own data" if data is None else str(data)
    _write_json(
        folder / EVALUATION_FILE,
        {"format": 1, "model": str(model if not isinstance(model, SavedModel) else model.path),
         "data": source, "split": split, "files": files},
    )  # fmt: skip
    if report:
        log(f"{saved.task.report_title.replace('test split', f'{split} split of {source}')}:\n{report}")
    log(f"wrote {', '.join(files)} to {folder}")
    return EvaluationResult(metrics=metrics, report=report, output_dir=folder, files=files)


def run_command(args) -> int | None:
    """``hftl evaluate MODEL [DATA] --output_dir DIR``: the metrics (stdout) and files in DIR."""
    result = evaluate(
        args.model,
        args.data,
        output_dir=args.output_dir,
        split=args.split,
        batch_size=args.batch_size,
        threshold=args.threshold,
        text_column=args.text_column,
        label_column=args.label_column,
        trust_remote_code=args.trust_remote_code,
    )
    width = max(len(key) for key in result.metrics)
    for key, value in result.metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        sys.stdout.write(f"{key:<{width}}  {shown}\n")
    sys.stdout.flush()
    return None
