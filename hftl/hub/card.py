"""The model card (README.md) of an output directory, rendered by ``huggingface_hub.ModelCard``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

__all__ = ["CardFacts", "build_model_card", "write_model_card", "format_metric", "CARD_FILE"]

CARD_FILE = "README.md"

# Rendered by ModelCard.from_template (Jinja2); the YAML metadata comes from ModelCardData.
TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ summary }}

- **Method:** {{ method_line }}
- **Trainable parameters:** {{ trainable }}
{% for line in details %}{{ line }}
{% endfor %}
## Results

| metric | validation | test |
|---|---|---|
{% for name, eval_value, test_value in results %}| {{ name }} | {{ eval_value }} | {{ test_value }} |
{% endfor %}
{% for section in sections %}
{{ section }}

{% endfor %}
{% for file, caption in plots %}![{{ caption }}]({{ file }})
{% endfor %}
{% if curves_image %}![Training curves: loss per step and validation metrics]({{ curves_image }})
{% endif %}
## Training

| hyperparameter | value |
|---|---|
{% for name, value in hyperparameters %}| {{ name }} | {{ value }} |
{% endfor %}

Trained with hftl (`{{ command }}`); the full configuration is in
`hftl_config.yaml` (rerun it with `--config hftl_config.yaml`) and every metric in `all_results.json`.

## Usage

```python
{{ usage }}
```
"""


@dataclass
class CardFacts:
    """What the card says; collected by :func:`hftl.finetune` at the end of a run. What depends on the
    kind of prediction (``details``, ``tags``, ``usage``, the metric lists, ``plots``) comes from the task.

    Args:
        details: Markdown lines added to the summary list (e.g. the labels, a decision threshold).
        tags: Tags beside ``hftl``, the method and the pipeline tag.
        usage: The Python usage snippet.
        metric_order: The results table's row order (other metrics follow alphabetically).
        index_metrics: Metrics whose test values go into the model-index (Hub leaderboards).
        sections: The method's markdown blocks after the results table (e.g. teacher vs student).
        plots: ``(file name, caption)`` of each task plot in the output directory.
        curves_image: The training curves' file name, if drawn.
        kind: What the card's first line calls the model (the task's name where its pipeline tag is
            another task's, e.g. regression served under text-classification); None: the pipeline tag.
        widget_texts: Example inputs for the Hub's inference widget (the ``widget:`` metadata).
    """

    title: str
    pipeline_tag: str
    method: str
    method_summary: str
    metrics: dict
    hyperparameters: dict
    usage: str
    details: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    metric_order: tuple[str, ...] = ("loss",)
    index_metrics: tuple[str, ...] = ()
    base_model: str | None = None
    dataset: str | None = None
    dataset_on_hub: bool = False
    teacher: str | None = None
    sections: list[str] = field(default_factory=list)
    plots: list[tuple[str, str]] = field(default_factory=list)
    curves_image: str | None = None
    kind: str | None = None  # what the card's first line calls the model; the pipeline tag when None
    widget_texts: tuple[str, ...] = ()  # the Hub inference widget's example inputs (empty: the Hub's own)


def format_metric(value) -> str:
    """A metric value as a card table shows it (floats to 4 places)."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _results(metrics: dict, order: tuple[str, ...]) -> list[tuple[str, str, str]]:
    names = sorted(
        {
            key.split("_", 1)[1]
            for key in metrics
            if key.startswith(("eval_", "test_")) and not key.endswith(("runtime", "per_second", "samples"))
        }
    )
    names.sort(key=lambda name: order.index(name) if name in order else len(order))
    return [
        (name, format_metric(metrics.get(f"eval_{name}", "")), format_metric(metrics.get(f"test_{name}", "")))
        for name in names
    ]


def build_model_card(facts: CardFacts, repo_id: str | None = None) -> ModelCard:
    """The card: YAML metadata (base model, datasets, tags, a model-index with the test metrics) and a
    human part (method, the task's details, results, images, hyperparameters, the usage snippet)."""
    repo_id = repo_id or facts.title
    metrics = facts.metrics
    eval_results = [
        EvalResult(
            task_type=facts.pipeline_tag,
            dataset_type=facts.dataset or "custom",
            dataset_name=facts.dataset or "custom",
            dataset_split="test",
            metric_type=name,
            metric_value=float(metrics[f"test_{name}"]),
        )
        for name in facts.index_metrics
        if isinstance(metrics.get(f"test_{name}"), float)
    ]
    card_data = ModelCardData(
        base_model=facts.base_model,
        datasets=[facts.dataset] if facts.dataset_on_hub else None,
        library_name="transformers",
        pipeline_tag=facts.pipeline_tag,
        tags=["hftl", facts.method, facts.pipeline_tag, *facts.tags],
        model_name=repo_id,
        eval_results=eval_results or None,
        widget=[{"text": text} for text in facts.widget_texts] or None,
    )
    trainable = metrics.get("trainable_params")
    data_phrase = f" on `{facts.dataset}`" if facts.dataset else ""
    summary = (
        f"A {facts.kind or facts.pipeline_tag} model fine-tuned from `{facts.base_model}`{data_phrase} with hftl."
        if facts.base_model
        else f"A {facts.kind or facts.pipeline_tag} model trained{data_phrase} with hftl."
    )
    if facts.teacher:
        summary += f" Distilled from the teacher `{facts.teacher}`."
    return ModelCard.from_template(
        card_data,
        template_str=TEMPLATE,
        title=repo_id,
        summary=summary,
        method_line=f"`{facts.method}`: {facts.method_summary}",
        trainable=f"{trainable:,} ({metrics.get('trainable_fraction', 0):.2%})" if trainable else "n/a",
        details=facts.details,
        results=_results(metrics, facts.metric_order),
        sections=facts.sections,
        plots=facts.plots,
        curves_image=facts.curves_image,
        hyperparameters=list(facts.hyperparameters.items()),
        command=f"--method {facts.method}",
        usage=facts.usage,
    )


def write_model_card(facts: CardFacts, output_dir: str | Path, repo_id: str | None = None) -> Path:
    path = Path(output_dir) / CARD_FILE
    build_model_card(facts, repo_id).save(path)
    return path
