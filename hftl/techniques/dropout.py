"""``--dropout p``: one dropout probability for the whole model, set in its config before it is built.

transformers models read their dropout rates from the config when their modules are created, so the
override goes into the config that ``from_pretrained``/``from_config`` receive. Field names differ by
architecture (BERT ``hidden_dropout_prob``/``attention_probs_dropout_prob``/``classifier_dropout``,
DistilBERT ``dropout``/``seq_classif_dropout``, GPT-2 ``resid_pdrop``...); every dropout-probability field
of the config is set. timm models (TimmWrapper) take ``drop_rate`` through ``config.model_args``.
Stochastic depth (``drop_path_rate``, ``drop_connect_rate``, ``layerdrop``) is a different regulariser and
is left alone.
"""

from __future__ import annotations

import torch

from .._log import log

__all__ = ["override_dropout", "dropout_fields"]

_SUFFIXES = ("dropout", "dropout_prob", "dropout_rate", "_pdrop")
_NOT_PROBABILITIES = ("drop_path_rate", "drop_connect_rate", "layerdrop", "lora_dropout")


def dropout_fields(config) -> list[str]:
    """Names of the config's dropout probabilities (``classifier_dropout: None`` counts: it falls back to
    the hidden dropout)."""
    names = []
    for name, value in config.to_dict().items():
        if name in _NOT_PROBABILITIES or not name.endswith(_SUFFIXES):
            continue
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            names.append(name)
    return names


def _timm_accepts_drop_rate(architecture: str, model_args: dict) -> bool:
    """Whether ``timm.create_model`` takes ``drop_rate`` for this architecture (almost all do); built on
    the meta device, so it costs no memory."""
    import timm

    try:
        with torch.device("meta"):
            timm.create_model(architecture, pretrained=False, **{**model_args, "drop_rate": 0.0})
    except TypeError:
        return False
    return True


def override_dropout(config, probability: float | None) -> list[str]:
    """Set every dropout probability of ``config`` to ``probability``; log what changed (or that the
    model has none hftl knows). Returns the names set. ``None`` leaves the checkpoint's values."""
    if probability is None:
        return []
    if getattr(config, "model_type", None) == "timm_wrapper":
        model_args = dict(config.model_args or {})
        if not _timm_accepts_drop_rate(config.architecture, model_args):
            log(
                f"--dropout {probability:g}: timm's {config.architecture} takes no drop_rate; its dropout is unchanged"
            )
            return []
        before = model_args.get("drop_rate", "timm's default")
        config.model_args = {**model_args, "drop_rate": probability}
        log(f"dropout {probability:g}: timm drop_rate (was {before})")
        return ["drop_rate"]
    names = dropout_fields(config)
    if not names:
        log(
            f"--dropout {probability:g}: the {getattr(config, 'model_type', 'model')} config has no dropout field hftl "
            "knows; the model's dropout is unchanged"
        )
        return []
    changes = ", ".join(f"{name} {getattr(config, name)}" for name in names)
    for name in names:
        setattr(config, name, probability)
    log(f"dropout {probability:g} (was: {changes})")
    return names
