"""save -> load in a fresh process -> predict gives the same logits; pipeline() returns label names.

The fresh process is forked from a server that imported hftl and nothing else (``_forked.py``): it holds
no model of the test's, so it loads only what was saved."""

from __future__ import annotations

import json

import pytest
import torch

from hftl import finetune

from .test_methods import STANDALONE_METHODS

TEXTS = ["the team won the cup final", "a new phone chip for data networks", "the minister lost the vote"]

LOAD_AND_PREDICT = """
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
out, texts = sys.argv[1], json.loads(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(out)
model = AutoModelForSequenceClassification.from_pretrained(out).eval()
with torch.no_grad():
    logits = model(**tokenizer(texts, return_tensors="pt", padding=True)).logits
labels = [p["label"] for p in pipeline("text-classification", model=out, device="cpu")(texts)]
print(json.dumps({"logits": logits.tolist(), "labels": labels}))
"""


@pytest.mark.parametrize("method", STANDALONE_METHODS)
def test_fresh_process_reproduces_logits_and_names_labels(run_forked, tiny_options, method):
    result = finetune(method=method, learning_rate=1e-2, **tiny_options)
    model = result.trainer.model.eval().cpu()  # compare on CPU: GPU matmuls may run in TF32
    tokenizer = result.trainer.processing_class
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = model(**batch).logits

    exit_code, log = run_forked(result.output_dir, json.dumps(TEXTS), code=LOAD_AND_PREDICT)
    assert exit_code == 0, log[-3000:]
    output = json.loads(log.strip().splitlines()[-1])  # the last line written, stderr's before it
    torch.testing.assert_close(torch.tensor(output["logits"]), expected, atol=1e-5, rtol=0)
    assert set(output["labels"]) <= {"politics", "sport", "tech"}


def test_predictions_keep_dataset_order(tiny_options):
    """Length-grouped training must not reorder predict(): row i's output belongs to row i."""
    result = finetune(method="full", **tiny_options)
    trainer = result.trainer
    assert trainer.args.train_sampling_strategy == "group_by_length"
    split = trainer.train_dataset  # mixed lengths and labels
    output = trainer.predict(split)
    assert list(output.label_ids) == split["labels"]


def test_adapter_loads_with_auto_peft_model(tiny_options):
    from peft import AutoPeftModelForSequenceClassification

    result = finetune(method="lora", learning_rate=1e-2, **tiny_options)
    tokenizer = result.trainer.processing_class
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    model = AutoPeftModelForSequenceClassification.from_pretrained(
        str(result.output_dir / "adapter"), num_labels=3
    ).eval()
    trained = result.trainer.model.eval().cpu()
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, trained(**batch).logits, atol=1e-5, rtol=0)
