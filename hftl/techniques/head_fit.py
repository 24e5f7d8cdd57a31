"""Fitting the new head before training (``--fit_head``): the head's final linear layer is solved as an
L2-regularised logistic regression on the features the frozen pretrained model gives the training rows,
then training starts from it. A random head on a few rows needs many steps before its gradients tell the
backbone anything useful; a fitted one starts where a linear probe ends (LP-FT, Kumar et al. 2022), which is
what makes SetFit's and a linear probe's few-shot results (a logistic-regression head on sentence
embeddings) reachable by fine-tuning too.

Written here because neither Trainer nor peft fits a head: one forward pass over the training rows
(no gradients), then L-BFGS on a (rows x features) matrix, which takes well under a second at
few-shot sizes. Single-label classification only; other label kinds keep the random head.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from .._log import log

__all__ = ["AUTO_MAX_ROWS", "final_linear", "fit_head", "wants_head_fit"]

AUTO_MAX_ROWS = (
    2_000  # auto: fitted up to this many training rows (the feature pass costs a third of an epoch)
)
L2 = 1.0  # regularisation as scikit-learn's LogisticRegression(C=1.0): 0.5 |W|^2 + sum of row losses


def wants_head_fit(asked: bool | None, rows: int, single_label: bool, has_new_head: bool) -> tuple[bool, str]:
    """Whether to fit the head, and why (for the log); ``asked`` is ``--fit_head`` (None: auto)."""
    if asked is False:
        return False, ""
    if not single_label or not has_new_head:
        why = "the head is the checkpoint's own" if not has_new_head else "it fits single-label classifiers"
        if asked:
            return False, f"--fit_head: skipped, {why}"
        return False, ""
    if asked is None and rows > AUTO_MAX_ROWS:
        return False, ""
    reason = "asked" if asked else f"{rows} training rows (at most {AUTO_MAX_ROWS:,})"
    return (
        True,
        f"fit_head: the new head starts as a logistic regression on the pretrained features ({reason})",
    )


def final_linear(model: nn.Module, head: list[str], num_labels: int) -> nn.Linear | None:
    """The head's last linear layer (the one that outputs ``num_labels`` logits), or None."""
    found = None
    for name in head:
        module = model.get_submodule(name)
        for sub in module.modules():
            if isinstance(sub, nn.Linear) and sub.out_features == num_labels:
                found = sub
    return found


@torch.no_grad()
def _features(model: nn.Module, linear: nn.Linear, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    captured: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    hook = linear.register_forward_hook(
        lambda module, args, output: captured.append(args[0].detach().float())
    )
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for batch in loader:
            labels.append(batch.pop("labels"))
            model(**{key: value.to(device) for key, value in batch.items()})
    finally:
        hook.remove()
        model.train(was_training)
    features = torch.cat([c.reshape(-1, c.shape[-1]) for c in captured])
    return features, torch.cat(labels).reshape(-1)


def fit_head(model: nn.Module, linear: nn.Linear, dataset, collator, batch_size: int = 32) -> float | None:
    """Set ``linear`` (the head's last layer) to the logistic regression on the frozen model's features of
    ``dataset``'s rows; returns the fitted model's training accuracy (None where the head scores every token
    before the model pools, as in decoders: left random).

    Example:
        >>> fit_head(model, final_linear(model, ["classifier"], 5), tokenized["train"], collator)  # doctest: +SKIP
        1.0
    """
    columns = [
        c for c in dataset.column_names if c in ("input_ids", "attention_mask", "token_type_ids", "labels")
    ]
    loader = DataLoader(dataset.select_columns(columns), batch_size=batch_size, collate_fn=collator)
    features, labels = _features(model, linear, loader)
    if len(features) != len(labels):  # the head runs on every token and pooling follows it (decoders)
        log("fit_head: skipped, this model's head scores every token before pooling; the head starts random")
        return None
    labels = labels.to(features.device).long()
    weight = torch.zeros_like(linear.weight, dtype=torch.float32, device=features.device, requires_grad=True)
    # a head without a bias (GPT-2's score layer) is fitted without one
    bias = torch.zeros(weight.shape[0], device=features.device, requires_grad=linear.bias is not None)
    optimizer = torch.optim.LBFGS([weight, bias] if linear.bias is not None else [weight], max_iter=200,
                                  line_search_fn="strong_wolfe")  # fmt: skip

    def loss_fn():
        optimizer.zero_grad()
        logits = features @ weight.T + bias
        loss = nn.functional.cross_entropy(logits, labels, reduction="sum") + 0.5 * L2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(loss_fn)
    with torch.no_grad():
        linear.weight.copy_(weight.to(linear.weight.dtype))
        if linear.bias is not None:
            linear.bias.copy_(bias.to(linear.bias.dtype))
        accuracy = ((features @ weight.T + bias).argmax(-1) == labels).float().mean().item()
    log(f"fit_head: logistic regression on {len(labels)} rows' features, training accuracy {accuracy:.3f}")
    return accuracy
