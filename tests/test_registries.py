"""The method registry takes methods written for earlier versions of hftl as they are."""

from __future__ import annotations

import hftl.methods._registry
from hftl import finetune
from hftl.methods import Method, get_method, register_method


class OldStyleBitFit(Method):
    """As docs/methods.md showed it before methods were classes: registered as an instance, with the
    four-argument ``prepare``."""

    name = "old-style-bitfit"
    default_learning_rate = 1e-3
    summary = "only biases and the head train"

    def prepare(self, model, head, method_args, base_model_id):
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.endswith("bias") or name.split(".")[0] in head)
        return model


def test_an_instance_with_the_four_argument_prepare_registers_and_trains(tiny_options, monkeypatch):
    registry = hftl.methods._registry._METHODS
    monkeypatch.setattr(registry, "_entries", dict(registry._entries))  # registered for this test only
    register_method(OldStyleBitFit())
    assert get_method("old-style-bitfit") is OldStyleBitFit
    result = finetune(method="old-style-bitfit", **tiny_options)
    trainable = {name for name, p in result.trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all(name.endswith("bias") or name.startswith("classifier") for name in trainable)
