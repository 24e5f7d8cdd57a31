"""Sentence-embedding pooling in a stock sequence classifier: a sentence-transformers checkpoint was trained
for the mean (or [CLS]) of its token vectors, while ``AutoModelForSequenceClassification`` reads [CLS] through
a pooler trained for another objective (or through a new, random dense layer). The checkpoint's own pooling is
folded into the stock architecture, so the saved model stays a plain ``BertForSequenceClassification`` (or
RoBERTa, ...) that ``pipeline()`` loads without ``trust_remote_code``:

- ``mean``: one more encoder layer, fixed, computes at [CLS] the LayerNorm of the masked mean of the last
  layer's token vectors: its query weights are zero, so every position attends uniformly to the unmasked
  tokens; value = identity; the attention output is scaled by ``MEAN_SCALE`` so the residual [CLS] vector is
  a 1/MEAN_SCALE part of what the LayerNorm sees; the feed-forward block outputs zero. sentence-transformers'
  own Normalize step is L2; the LayerNorm here centres and scales instead (both scale-free).
- ``cls``: the [CLS] vector itself; a pretrained pooler (BERT's, trained for next-sentence prediction)
  becomes the identity before its tanh.

The pooling layer never trains (every method leaves it frozen, dropout off), so the model computes the same
features in training and at inference. Checked against sentence-transformers' own embeddings in
tests/test_embedding_pooling.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError

__all__ = [
    "MEAN_SCALE",
    "add_pooling_layer",
    "checkpoint_max_length",
    "plan_pooling",
    "POOLING_LAYER",
    "checkpoint_pooling",
    "encoder_layers",
    "fold_pooling",
    "freeze_pooling_layers",
]

MEAN_SCALE = 1000.0  # large enough that [CLS]'s residual is noise, small enough for fp16 (max 65504)
POOLING_LAYER = "_hftl_pooling_layer"  # attribute marking the appended layer (frozen by every method)


def checkpoint_pooling(path: str | Path) -> str | None:
    """The pooling a sentence-transformers checkpoint folder declares: ``"mean"``, ``"cls"``, another mode's
    name (``"max"``, ``"mean_sqrt_len"``, ``"lasttoken"``, ``"weightedmean"``, ``"mixed"``: not foldable) or
    ``None`` (not a sentence-transformers folder, or its model lives in a subfolder)."""
    folder = Path(path)
    try:
        modules = json.loads((folder / "modules.json").read_text())
        transformer = next(m for m in modules if m.get("type", "").endswith(".Transformer"))
        pooling = next(m for m in modules if m.get("type", "").endswith(".Pooling"))
        if transformer.get("path", "") not in ("", "."):
            return None  # old layout: the Hugging Face model is in a subfolder, not at this path
        config = json.loads((folder / pooling["path"] / "config.json").read_text())
    except (OSError, ValueError, StopIteration, TypeError, KeyError, AttributeError):
        return None
    if isinstance(config.get("pooling_mode"), str):  # newer sentence-transformers write the mode's name
        return {"cls": "cls", "mean": "mean"}.get(config["pooling_mode"], config["pooling_mode"])
    modes = [
        key[len("pooling_mode_") :] for key, on in config.items() if key.startswith("pooling_mode_") and on
    ]
    named = {"mean_tokens": "mean", "cls_token": "cls", "max_tokens": "max"}
    if len(modes) != 1:
        return "mixed" if modes else None
    return named.get(modes[0], modes[0])


def checkpoint_max_length(path: str | Path) -> int | None:
    """The input length a sentence-transformers checkpoint is used with (``max_seq_length`` in its
    sentence_bert_config.json), or None."""
    try:
        value = json.loads((Path(path) / "sentence_bert_config.json").read_text()).get("max_seq_length")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value > 0 else None


def encoder_layers(model: nn.Module) -> nn.ModuleList | None:
    """The encoder's layer list if its layers have the BERT shape the mean fold needs (BERT, RoBERTa,
    XLM-R, ELECTRA, ...), else None."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or not len(layers):
        return None
    last = layers[-1]
    needed = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
              "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm")  # fmt: skip
    try:
        found = [last.get_submodule(name) for name in needed]
    except AttributeError:
        return None
    if not all(isinstance(m, (nn.Linear, nn.LayerNorm)) for m in found):
        return None
    if getattr(model.config, "position_embedding_type", "absolute") != "absolute":
        return None  # relative position scores would make the attention non-uniform
    return layers


@torch.no_grad()
def fold_pooling(model: nn.Module, mode: str) -> None:
    """Make ``model`` (built with one extra encoder layer for ``mode == "mean"``) read the checkpoint's
    pooling: fix the last layer as mean pooling, and make a pretrained pooler the identity."""
    if mode == "mean":
        layer = encoder_layers(model)[-1]
        hidden = layer.attention.self.query.in_features
        eye = torch.eye(hidden)
        attention = layer.attention.self
        for linear, weight in ((attention.query, 0 * eye), (attention.key, 0 * eye), (attention.value, eye),
                               (layer.attention.output.dense, MEAN_SCALE * eye)):  # fmt: skip
            linear.weight.copy_(weight)
            linear.bias.zero_()
        for linear in (layer.intermediate.dense, layer.output.dense):
            linear.weight.zero_()
            linear.bias.zero_()
        for norm in (layer.attention.output.LayerNorm, layer.output.LayerNorm):
            norm.weight.fill_(1.0)
            norm.bias.zero_()
        setattr(layer, POOLING_LAYER, True)
        layer.register_forward_pre_hook(_eval_mode)
    base = getattr(model, getattr(model, "base_model_prefix", ""), model)
    pooler = getattr(getattr(base, "pooler", None), "dense", None)
    if isinstance(pooler, nn.Linear) and pooler.in_features == pooler.out_features:
        pooler.weight.copy_(torch.eye(pooler.in_features))
        pooler.bias.zero_()


def freeze_pooling_layers(model: nn.Module) -> int:
    """Freeze the folded pooling layer (and any adapter a method put into it, which then stays zero).
    Returns the number of parameters frozen."""
    frozen = 0
    for module in model.modules():
        if getattr(module, POOLING_LAYER, False):
            for parameter in module.parameters():
                frozen += parameter.numel() if parameter.requires_grad else 0
                parameter.requires_grad_(False)
    return frozen


def _eval_mode(layer: nn.Module, args) -> None:
    """Forward pre-hook: the pooling layer runs without dropout whatever ``model.train()`` said."""
    for module in layer.modules():
        module.training = False


def plan_pooling(
    task, method, model_args, method_args, path: str, skeleton: nn.Module, tuned: str | None = None
) -> tuple[str | None, str]:
    """The pooling this run folds in (``"mean"``, ``"cls"`` or ``None`` for the model's own head) and why.

    ``--pooling auto`` follows a sentence-transformers checkpoint's declared pooling where the task pools one
    vector per text and the method trains the saved architecture as a whole (``Method.folds_pooling``: an
    adapter is saved against the base checkpoint's architecture, a student keeps only some layers).
    ``tuned``: the pooling a built-in dataset's demo was measured with (its auto value there).
    """
    asked = model_args.pooling
    if asked not in ("auto", "mean", "cls", "model"):
        raise ConfigError(f"Unknown --pooling '{asked}'; choose auto, mean, cls or model.")
    if asked == "auto" and tuned == "model":
        return None, "the model's own head (the built-in dataset's demo was measured with it)"
    if asked == "model" or not task.pools_text:
        if asked in ("mean", "cls"):
            raise ConfigError(
                f"--pooling {asked} applies to text classification and regression, not {task.name}."
            )
        return None, ""
    declared = checkpoint_pooling(path) if not model_args.from_scratch else None
    mode = declared if asked == "auto" else asked
    if mode not in ("mean", "cls"):
        why = f"the checkpoint's pooling is {declared}, which a stock head can't hold" if declared else ""
        return None, why
    blocker = None
    if not method.folds_pooling:
        blocker = f"--method {method.name} saves against the base checkpoint's own architecture"
    elif method_args.student_layers:
        blocker = "--student_layers keeps the first layers only"
    elif mode == "mean" and encoder_layers(skeleton) is None:
        blocker = f"a {skeleton.config.model_type} encoder can't hold the mean as a stock layer (BERT-style ones can)"
    if blocker and asked != "auto":
        raise ConfigError(f"--pooling {mode}: {blocker}; use --pooling model.")
    if blocker:
        return None, f"the checkpoint was trained with {mode} pooling, but {blocker}: the model's own head"
    source = "as the sentence-transformers checkpoint was trained" if asked == "auto" else "asked"
    return mode, f"{mode} pooling ({source})"


def add_pooling_layer(model: nn.Module, mode: str) -> None:
    """Append the fixed mean-pooling layer (``mode == "mean"``) and fold the pooling into ``model``."""
    if mode == "mean":
        layers = encoder_layers(model)
        layers.append(copy.deepcopy(layers[-1]))  # every weight is overwritten by fold_pooling
        model.config.num_hidden_layers = len(layers)
    fold_pooling(model, mode)
