"""The model card (README.md) of an output directory, rendered by ``huggingface_hub.ModelCard``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

__all__ = ["CardFacts", "build_model_card", "write_model_card", "CARD_FILE"]

CARD_FILE = "README.md"

# Rendered by ModelCard.from_template (Jinja2); the YAML metadata comes from ModelCardData.
TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ summary }}

- **Method:** {{ method_line }}
- **Trainable parameters:** {{ trainable }}
- **Labels ({{ labels | length }}{% if multi_label %}, several per example{% endif %}):** {{ labels | join(", ") }}
{% if threshold is not none %}- **Decision threshold:** {{ threshold }} (per-class sigmoid scores at or above it are predicted; tuned on validation, also in `config.json` as `multi_label_threshold`)
{% endif %}
## Results

| metric | validation | test |
|---|---|---|
{% for name, eval_value, test_value in results %}| {{ name }} | {{ eval_value }} | {{ test_value }} |
{% endfor %}
{% if teacher_rows %}
### Teacher and student (same test split)

| | teacher | student (this model) |
|---|---|---|
{% for name, teacher_value, student_value in teacher_rows %}| {{ name }} | {{ teacher_value }} | {{ student_value }} |
{% endfor %}
{% endif %}
{% if confusion_image %}![{{ confusion_title }}]({{ confusion_image }})
{% endif %}
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
    """What the card says; collected by :func:`hftl.finetune` at the end of a run."""

    title: str
    pipeline_tag: str
    method: str
    method_summary: str
    labels: list[str]
    metrics: dict
    hyperparameters: dict
    base_model: str | None = None
    dataset: str | None = None
    dataset_on_hub: bool = False
    multi_label: bool = False
    teacher: str | None = None
    adapter: bool = False
    images: dict = field(default_factory=dict)  # "confusion"/"curves" -> file name


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _results(metrics: dict) -> list[tuple[str, str, str]]:
    names = sorted(
        {
            key.split("_", 1)[1]
            for key in metrics
            if key.startswith(("eval_", "test_")) and not key.endswith(("runtime", "per_second", "samples"))
        }
    )
    order = ["accuracy", "micro_f1", "macro_f1", "mAP", "subset_accuracy", "loss"]
    names.sort(key=lambda name: order.index(name) if name in order else len(order))
    return [
        (name, _number(metrics.get(f"eval_{name}", "")), _number(metrics.get(f"test_{name}", "")))
        for name in names
    ]


def _usage(facts: CardFacts, repo_id: str) -> str:
    snippet = (
        f'from transformers import pipeline\n\nclassify = pipeline("{facts.pipeline_tag}", model="{repo_id}"'
    )
    snippet += ", top_k=None)" if facts.multi_label else ")"
    example = (
        '"Shares fell sharply on Wall Street"'
        if facts.pipeline_tag == "text-classification"
        else '"photo.jpg"'
    )
    snippet += f"\nprint(classify({example}))"
    if facts.adapter:
        auto = (
            "AutoModelForSequenceClassification"
            if facts.pipeline_tag == "text-classification"
            else "AutoModelForImageClassification"
        )
        snippet += (
            f"\n\n# or the LoRA adapter (head included) on its base model\nfrom peft import PeftModel\n"
            f"from transformers import {auto}\n\n"
            f'base = {auto}.from_pretrained("{facts.base_model or "<base model>"}", num_labels={len(facts.labels)})\n'
            f'model = PeftModel.from_pretrained(base, "{repo_id}", subfolder="adapter")'
        )
    return snippet


def build_model_card(facts: CardFacts, repo_id: str | None = None) -> ModelCard:
    """The card: YAML metadata (base model, datasets, tags, a model-index with the test metrics) and a
    human part (method, labels, results, images, hyperparameters, a usage snippet that loads the repo)."""
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
        for name in ("accuracy", "macro_f1", "micro_f1", "mAP")
        if isinstance(metrics.get(f"test_{name}"), float)
    ]
    card_data = ModelCardData(
        base_model=facts.base_model,
        datasets=[facts.dataset] if facts.dataset_on_hub else None,
        library_name="transformers",
        pipeline_tag=facts.pipeline_tag,
        tags=["hftl", facts.method, facts.pipeline_tag] + (["multi-label"] if facts.multi_label else []),
        model_name=repo_id,
        eval_results=eval_results or None,
    )
    trainable = metrics.get("trainable_params")
    teacher_rows = []
    if facts.teacher:
        for name in ("accuracy", "macro_f1", "micro_f1"):
            if f"teacher_test_{name}" in metrics and f"test_{name}" in metrics:
                teacher_rows.append(
                    (
                        f"test {name}",
                        _number(metrics[f"teacher_test_{name}"]),
                        _number(metrics[f"test_{name}"]),
                    )
                )
        teacher_rows.append(
            ("parameters", f"{metrics.get('teacher_params', 0):,}", f"{metrics.get('student_params', 0):,}")
        )
        if "latency_speedup" in metrics:
            teacher_rows.append(
                ("inference speed (same batch)", "1.00x", f"{metrics['latency_speedup']:.2f}x")
            )
    data_phrase = f" on `{facts.dataset}`" if facts.dataset else ""
    summary = (
        f"A {facts.pipeline_tag} model fine-tuned from `{facts.base_model}`{data_phrase} with hftl."
        if facts.base_model
        else f"A {facts.pipeline_tag} model trained{data_phrase} with hftl."
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
        labels=facts.labels,
        multi_label=facts.multi_label,
        threshold=metrics.get("threshold"),
        results=_results(metrics),
        teacher_rows=teacher_rows,
        confusion_image=facts.images.get("confusion"),
        confusion_title="Per-class test scores"
        if facts.multi_label
        else "Confusion matrix on the test split",
        curves_image=facts.images.get("curves"),
        hyperparameters=list(facts.hyperparameters.items()),
        command=f"--method {facts.method}",
        usage=_usage(facts, repo_id),
    )


def write_model_card(facts: CardFacts, output_dir: str | Path, repo_id: str | None = None) -> Path:
    path = Path(output_dir) / CARD_FILE
    build_model_card(facts, repo_id).save(path)
    return path
