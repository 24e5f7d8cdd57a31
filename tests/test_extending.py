"""docs/extending.md's worked example: IA3 (hftl/methods/ia3.py, one module and one import line) trains,
saves, reloads and predicts like LoRA; the registry takes classes and hands each run its own instance."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification

import hftl.methods.ia3
from hftl import finetune, make_parser
from hftl.methods import Method, default_method, get_method, method_names, register_method
from hftl.methods.ia3 import IA3
from hftl.options.config import MethodArguments

from .test_methods import Snapshot, changed
from .test_save_load import LOAD_AND_PREDICT, TEXTS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def test_the_docs_show_the_module_these_tests_run():
    """docs/extending.md quotes hftl/methods/ia3.py whole: the page shows the code the tests run."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    module = Path(hftl.methods.ia3.__file__).read_text()
    assert module in blocks


def test_ia3_trains_its_vectors_and_the_head_and_nothing_else(tiny_options):
    snapshot = Snapshot()
    result = finetune(method="ia3", callbacks=[snapshot], **tiny_options)
    model = result.trainer.model
    moved = changed(snapshot, model)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    vectors = [name for name in moved if "ia3_l" in name]
    assert vectors and trainable == {name for name in moved if "ia3_l" in name or "modules_to_save" in name}
    assert all(moved[name] for name in vectors)  # every IA3 vector moved at the default learning rate
    assert any(moved[name] for name in trainable if "classifier" in name)
    assert not any(moved[name] for name in moved if name not in trainable)  # frozen: bit-equal
    assert result.metrics["trainable_fraction"] < 0.01
    assert result.trainer.args.learning_rate == IA3.default_learning_rate  # auto: the method's default


def test_ia3_saves_a_merged_model_for_pipeline_and_an_adapter_for_peft(run_forked, tiny_options, tiny_bert_dir):
    from peft import PeftModel

    result = finetune(method="ia3", **tiny_options)
    out = result.output_dir
    trained = result.trainer.model.eval().cpu()
    batch = result.trainer.processing_class(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = trained(**batch).logits

    # the merged model, in a fresh process, through stock pipeline("text-classification")
    exit_code, log = run_forked(out, json.dumps(TEXTS), code=LOAD_AND_PREDICT)
    assert exit_code == 0, log[-3000:]
    output = json.loads(log.strip().splitlines()[-1])
    torch.testing.assert_close(torch.tensor(output["logits"]), expected, atol=1e-5, rtol=0)
    assert set(output["labels"]) <= {"politics", "sport", "tech"}

    # the adapter, head included, on the base model through PeftModel
    adapter_config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["peft_type"] == "IA3" and "classifier" in adapter_config["modules_to_save"]
    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3)
    adapted = PeftModel.from_pretrained(base, out / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(adapted(**batch).logits, expected, atol=1e-5, rtol=0)
    assert json.loads((out / "adapter" / "label_names.json").read_text()) == ["politics", "sport", "tech"]
    card = (out / "README.md").read_text()  # the card's snippet names the adapter the folder holds
    assert "# or the IA3 adapter (head included)" in card and "LoRA" not in card


def test_the_registry_holds_classes_and_each_run_gets_its_own_instance(tiny_options, monkeypatch):
    assert get_method("ia3") is IA3 and "ia3" in method_names()
    with pytest.raises(ValueError, match="already registered"):
        register_method(IA3)
    with pytest.raises(ValueError, match="already registered"):  # an instance registers its class
        register_method(IA3())
    with pytest.raises(TypeError, match="Method subclass"):
        register_method(object)
    made = []
    monkeypatch.setattr(IA3, "__init__", lambda self: made.append(self))
    finetune(method="ia3", **{**tiny_options, "max_steps": 1})
    finetune(method="ia3", **{**tiny_options, "max_steps": 1, "overwrite_output_dir": True})
    assert len(made) == 2 and made[0] is not made[1]


def test_the_method_option_comes_from_the_registry():
    assert MethodArguments().method == default_method() == "full"
    method = next(action for action in make_parser()._actions if action.dest == "method")
    assert method.default == default_method()
    for name in method_names():
        assert f"{name} (" in method.help, method.help
    assert "needs --teacher" in method.help
    assert issubclass(get_method(default_method()), Method)


def test_a_method_registered_from_user_code_runs(tiny_options, monkeypatch):
    """docs/extending.md's BitFit block, run as it stands; the registry is restored afterwards."""
    import hftl.methods._registry as registry

    monkeypatch.setattr(registry._METHODS, "_entries", dict(registry._METHODS._entries))
    block = next(b for b in re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S) if "BitFit" in b)
    exec(compile(block, str(DOCS), "exec"), {})
    snapshot = Snapshot()
    result = finetune(method="bitfit", callbacks=[snapshot], learning_rate=1e-2, **tiny_options)
    moved = changed(snapshot, result.trainer.model)
    assert any(did for name, did in moved.items() if name.endswith(".bias") and "classifier" not in name)
    assert moved["classifier.weight"]
    assert not any(did for name, did in moved.items() if name.endswith(".weight") and "classifier" not in name)
