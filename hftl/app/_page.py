"""The demo page: a Gradio Interface over a stock transformers ``pipeline``.

This module imports only gradio and transformers: its source, after this docstring, is also the body of
the Space's ``app.py`` (:func:`hftl.app.space.write_space_app`), so ``hftl app`` and the Space serve one page.
"""

from __future__ import annotations

import os

# No telemetry and no version check: the page must start with no network.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr  # noqa: E402
from transformers import AutoConfig, pipeline  # noqa: E402

# The architecture's suffix says what the model reads (TimmWrapperForImageClassification included).
TASKS = {
    "ForSequenceClassification": "text-classification",
    "ForImageClassification": "image-classification",
    "ForTokenClassification": "token-classification",
}
MAX_LABELS_SHOWN = 10


def task_of(config) -> str | None:
    """The pipeline task of a model config (``None`` when its architecture is none of :data:`TASKS`)."""
    for architecture in config.architectures or []:
        for suffix, task in TASKS.items():
            if architecture.endswith(suffix):
                return task
    return None


def is_regression(config) -> bool:
    return getattr(config, "problem_type", None) == "regression"


def label_names(config) -> list[str]:
    return [config.id2label[index] for index in sorted(config.id2label)]


def make_classifier(model: str, task: str, config):
    """A pipeline returning every label's score: softmax or sigmoid as the config's ``problem_type``
    says, raw values for regression."""
    options = {"top_k": None} if task == "text-classification" else {"top_k": config.num_labels}
    if is_regression(config):
        options["function_to_apply"] = "none"
    return pipeline(task, model=model, trust_remote_code=False, **options)


def describe(config, task: str) -> str:
    """The page's description: what the model reads and predicts, from its config."""
    names = label_names(config)
    shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    reads = "a text" if task == "text-classification" else "an image"
    if is_regression(config):
        return (
            f"Reads {reads} and predicts {'a value' if len(names) == 1 else f'{len(names)} values'}: {shown}."
        )
    line = f"Reads {reads} and scores {len(names)} labels: {shown}."
    if getattr(config, "problem_type", None) == "multi_label_classification":
        threshold = getattr(config, "multi_label_threshold", None)
        rule = f"at or above {threshold}" if threshold is not None else "above 0.5"
        line += f" Several labels may apply: each score is a sigmoid, labels scoring {rule} are predicted."
    return line


def build_page(classifier, task: str, config, title: str) -> gr.Interface:
    """The page: a text box or an image upload, a Submit button and the label scores (``gr.Label``)."""
    regression = is_regression(config)

    def predict(value):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise gr.Error("Enter a text or upload an image first.")
        outputs = classifier([value])[0]  # a batch of one: every label's scores, for texts and images alike
        if regression:  # values, not probabilities: shown as text rather than as bars
            return "; ".join(f"{item['label']} = {item['score']:.4g}" for item in outputs)
        return {item["label"]: float(item["score"]) for item in outputs}

    if task == "image-classification":
        reader = gr.Image(type="pil", label="Image", sources=["upload", "clipboard"])
    else:
        reader = gr.Textbox(lines=4, label="Text", placeholder="Type or paste a text")
    shown = min(config.num_labels, MAX_LABELS_SHOWN)
    return gr.Interface(
        predict,
        reader,
        gr.Label(num_top_classes=shown, label="Values" if regression else "Label scores"),
        title=title,
        description=describe(config, task),
        flagging_mode="never",
        analytics_enabled=False,
        api_name="predict",
    )


def page_for(model: str, title: str | None = None) -> gr.Interface:
    """The page for a model folder or Hub repo id (text or image classification, or regression)."""
    config = AutoConfig.from_pretrained(model, trust_remote_code=False)
    task = task_of(config)
    if task not in ("text-classification", "image-classification"):
        raise ValueError(f"{model} is not a text or image classifier ({config.architectures}).")
    return build_page(make_classifier(model, task, config), task, config, title or model)


# launch() options of both the local page and the Space: never a share link, no server-side rendering
# (a Node process), no links to the API page in the footer.
LAUNCH_OPTIONS = {"share": False, "ssr_mode": False, "footer_links": ["gradio"]}
