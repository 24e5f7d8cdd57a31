"""The card and its two images, written into every output directory at the end of a run."""

from __future__ import annotations

import os
from pathlib import Path

from .._log import log
from ..options.checks import default_chunk_stride
from ..run.sharding import run_precision
from .card import CardFacts, write_model_card
from .plots import CURVES_FILE, plot_training_curves

__all__ = ["write_card_and_images"]


def _hyperparameters(method, method_args, data_args, training_args) -> dict:
    values = {
        "learning rate": training_args.learning_rate,
        "epochs": training_args.num_train_epochs
        if training_args.max_steps <= 0
        else f"{training_args.max_steps} steps",
        "batch size per device": training_args.per_device_train_batch_size,
        "weight decay": training_args.weight_decay,
        "warmup steps": training_args.warmup_steps,
        "precision": run_precision(training_args),
        "seed": training_args.seed,
    }
    if data_args.max_length:
        values["max_length"] = data_args.max_length
    if data_args.image_size:
        values["image size"] = data_args.image_size
    if data_args.augment:
        values["augmentation"] = data_args.augment
    if data_args.long_text != "truncate":
        values["long documents"] = _long_text_setting(data_args)
    values.update(method.card_hyperparameters(method_args))
    return values


def _long_text_setting(data_args) -> str:
    """``--long_text`` as the card states it: the strategy, and for chunk its stride, pooling and cap."""
    if data_args.long_text != "chunk":
        return data_args.long_text
    stride = data_args.chunk_stride
    if stride is None and data_args.max_length:
        stride = default_chunk_stride(data_args.max_length)
    cap = f", at most {data_args.max_chunks} windows" if data_args.max_chunks else ""
    return (
        f"chunk (windows overlapping by {stride} tokens, {data_args.chunk_aggregation} of their logits{cap})"
    )


def _card_of(folder) -> tuple[str | None, str | None]:
    """(model_name, base_model) from an hftl output directory's own card, for lineage without paths."""
    path = Path(folder) / "README.md" if folder else None
    if not path or not path.is_file():
        return None, None
    try:
        from huggingface_hub import ModelCard

        data = ModelCard.load(path).data
        return data.get("model_name"), data.get("base_model")
    except Exception:  # noqa: BLE001 - a hand-written README is not an hftl card; lineage is optional
        return None, None


def looks_local(reference: str) -> bool:
    """``reference`` names a place on this machine, existing or gone (a rotated checkpoint, a deleted
    folder), rather than a Hub id (``name`` or ``user/name``)."""
    return (
        os.path.isabs(reference)
        or reference.startswith(("~", "./", "../"))
        or reference in (".", "..")
        or reference.count("/") > 1  # a Hub id has at most one
        or "\\" in reference
        or Path(reference).expanduser().exists()
    )


def _public_name(reference: str | None, hub_id: str | None = None, *, local: bool = False) -> str | None:
    """How a model or file is named in a public card or config: its Hub id, its own card's name, else
    its base name. ``local``: ``reference`` is a path even when it looks like a Hub id (an output folder)."""
    if not reference:
        return None
    if hub_id:
        return hub_id
    if not (local or looks_local(reference)):
        return reference  # already a Hub id
    path = Path(reference).expanduser()
    name, _ = _card_of(path)
    return name or Path(os.path.abspath(path)).name or reference


def write_card_and_images(
    output_dir,
    *,
    task,
    method,
    method_args,
    data,
    data_args,
    training_args,
    metrics: dict,
    predictions,
    references,
    log_history: list[dict],
    base_model: str | None,
    dataset_on_hub: bool,
    model_dir: str | None = None,
) -> Path:
    """The task's plots (``confusion_matrix.png`` for classification), ``training_curves.png`` and
    ``README.md`` (the model card) in ``output_dir``; what depends on the kind of prediction comes from ``task``."""
    output_dir = Path(output_dir)
    if base_model is None:  # a local hftl output as the starting point: name what it was trained from
        base_model = _card_of(model_dir)[1]
    labels = data.labels
    plots, curves = [], None
    try:
        plots = task.plots(output_dir, predictions, references, labels)
        if plot_training_curves(log_history, output_dir / CURVES_FILE, task.headline_metric(labels)):
            curves = CURVES_FILE
    except ImportError:  # matplotlib missing: a card without images beats no card
        log("matplotlib is not installed: the model card has no images (pip install matplotlib)")
    title = training_args.hub_model_id or output_dir.name  # also the repo id the card's snippet loads
    # the adapter's kind ("LoRA", "IA3") when the output holds one beside the merged model
    adapter = getattr(method, "label", "PEFT") if (output_dir / "adapter").is_dir() else None
    facts = CardFacts(
        title=title,
        pipeline_tag=task.pipeline_tag,
        kind=task.card_kind,
        widget_texts=task.card_widget_texts,
        method=method.name,
        method_summary=method.summary,
        metrics=metrics,
        hyperparameters=_hyperparameters(method, method_args, data_args, training_args),
        base_model=base_model,
        # a local file's path would publish the user's directory layout: its name is enough
        dataset=data_args.dataset
        if data.source.kind not in ("file", "folder")
        else Path(data_args.dataset).name,
        dataset_on_hub=dataset_on_hub,
        teacher=_public_name(method.card_teacher(method_args)),
        sections=method.card_sections(metrics, task, labels),
        usage=task.card_usage(title, labels, base_model, adapter),
        details=task.card_details(labels, metrics) + _validation_note(data),
        tags=task.card_tags(labels),
        metric_order=task.card_metric_order,
        index_metrics=task.card_index_metrics,
        plots=plots,
        curves_image=curves,
    )
    return write_model_card(facts, output_dir, training_args.hub_model_id)


def _validation_note(data) -> list[str]:
    """The card says so when its validation column scores the training rows (too few to hold any out)."""
    if not getattr(data, "validation_is_train", False):
        return []
    return [
        "- **Validation:** the training rows themselves (too few examples per class to hold any out), so the "
        "validation column scores training data; the test column is held out."
    ]
