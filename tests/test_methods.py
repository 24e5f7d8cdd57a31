"""Each method trains exactly the parameters it should, and saves what it should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback

from hftl import finetune
from hftl.methods import get_method, method_names

from .test_image import TINY, image_folder, tiny_resnet  # noqa: F401 - the fixtures

# every registered method that runs on a model and data alone (distillation also needs a teacher)
STANDALONE_METHODS = [name for name in method_names() if not get_method(name).required_options]


class Snapshot(TrainerCallback):
    """Parameter values at the start of training, by name."""

    def __init__(self):
        self.before: dict[str, torch.Tensor] = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {name: p.detach().clone() for name, p in model.named_parameters()}


def changed(snapshot: Snapshot, model) -> dict[str, bool]:
    return {name: not torch.equal(snapshot.before[name], p.detach()) for name, p in model.named_parameters()}


def test_full_trains_every_parameter(tiny_options):
    snapshot = Snapshot()
    result = finetune(method="full", callbacks=[snapshot], learning_rate=1e-2, **tiny_options)
    moved = changed(snapshot, result.trainer.model)
    # word embeddings only get gradients for tokens seen; every other tensor must move
    stale = [name for name, did in moved.items() if not did and "word_embeddings" not in name]
    assert not stale
    assert result.metrics["trainable_params"] == result.metrics["all_params"]


def test_linear_probe_trains_only_the_head(tiny_options):
    snapshot = Snapshot()
    result = finetune(method="linear-probe", callbacks=[snapshot], **tiny_options)
    moved = changed(snapshot, result.trainer.model)
    assert moved["classifier.weight"] and moved["classifier.bias"]
    assert not any(did for name, did in moved.items() if not name.startswith("classifier."))
    frozen = [name for name, p in result.trainer.model.named_parameters() if not p.requires_grad]
    assert frozen and all(not name.startswith("classifier.") for name in frozen)
    assert result.metrics["trainable_params"] == 32 * 3 + 3


def test_lora_trains_adapters_and_head_and_saves_both(tiny_options, tiny_bert_dir):
    snapshot = Snapshot()
    result = finetune(method="lora", callbacks=[snapshot], learning_rate=1e-2, **tiny_options)
    out = result.output_dir
    base_state = load_file(str(Path(tiny_bert_dir) / "model.safetensors"))

    # base weights frozen, LoRA B matrices and the head moved
    moved = changed(snapshot, result.trainer.model)
    lora_b = [name for name in moved if "lora_B" in name]
    assert lora_b and all(moved[name] for name in lora_b)
    assert any(moved[name] for name in moved if "classifier" in name and "modules_to_save" in name)
    assert not any(moved[name] for name in moved if "lora_" not in name and "modules_to_save" not in name)
    assert result.metrics["trainable_fraction"] < 0.05

    # adapter (with its head) in adapter/, merged model at the root
    adapter_config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == tiny_bert_dir
    assert "classifier" in adapter_config["modules_to_save"]
    adapter_keys = load_file(str(out / "adapter" / "adapter_model.safetensors")).keys()
    assert any("classifier" in key for key in adapter_keys)
    merged_state = load_file(str(out / "model.safetensors"))
    assert not any("lora" in key for key in merged_state)
    # the merged encoder differs from the base where LoRA was applied
    query = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(merged_state[query], base_state[query.removeprefix("bert.")])

    # merged logits == base + adapter logits
    from peft import PeftModel

    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer(["the team won the cup", "new phone chip data"], return_tensors="pt", padding=True)
    merged = AutoModelForSequenceClassification.from_pretrained(out).eval()
    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3)
    adapted = PeftModel.from_pretrained(base, out / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits, adapted(**batch).logits, atol=1e-5, rtol=0)


def check_lora_on_pointwise_convs(model, before: dict[str, torch.Tensor]) -> None:
    """LoRA in a CNN, as docs/methods.md says: adapters on exactly the 1x1 ungrouped convolutions (none
    on 3x3 or depthwise ones), every adapter's B matrix moved in training, and every other tensor
    (parameters and buffers, ``before`` is a state_dict) bit-equal unless peft's modules_to_save
    (head, BatchNorm) holds it."""
    from peft.tuners.lora import LoraLayer

    adapted = {name: layer for name, layer in model.named_modules() if isinstance(layer, LoraLayer)}
    assert adapted, "no LoRA layers"
    for name, layer in adapted.items():
        base = layer.get_base_layer()
        assert isinstance(base, torch.nn.Conv2d) and base.kernel_size == (1, 1) and base.groups == 1, name
    plain_convs = [
        module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Conv2d) and not any(name.startswith(a + ".") for a in adapted)
    ]
    assert plain_convs and all(c.kernel_size != (1, 1) or c.groups != 1 for c in plain_convs)
    after = model.state_dict()
    moved = {name for name, tensor in before.items() if not torch.equal(tensor, after[name].detach().cpu())}
    lora_b = {name for name in before if ".lora_B." in name}
    assert len(lora_b) == len(adapted) and lora_b <= moved
    assert all("lora_" in name or "modules_to_save" in name for name in moved), moved
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen and not frozen & moved


class StateSnapshot(TrainerCallback):
    """The state_dict (parameters and buffers) at the start of training, on the CPU."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {name: t.detach().cpu().clone() for name, t in model.state_dict().items()}


def test_lora_on_an_hf_resnet_adapts_exactly_the_pointwise_convs(tiny_resnet, image_folder, tmp_path):  # noqa: F811
    snapshot = StateSnapshot()
    result = finetune(
        task="image-classification",
        model=tiny_resnet,
        dataset=str(image_folder),
        method="lora",
        output_dir=str(tmp_path / "out"),
        callbacks=[snapshot],
        learning_rate=1e-2,
        **TINY,
    )
    check_lora_on_pointwise_convs(result.trainer.model, snapshot.before)


def test_lora_without_merge_keeps_only_the_adapter(tiny_options):
    result = finetune(method="lora", lora_merge=False, **tiny_options)
    assert (result.output_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert not (result.output_dir / "model.safetensors").exists()


@pytest.mark.parametrize("method", STANDALONE_METHODS)
def test_outputs_hold_results_config_and_labels(tiny_options, method):
    result = finetune(method=method, **tiny_options)
    out = result.output_dir
    results = json.loads((out / "all_results.json").read_text())
    for key in (
        "test_accuracy",
        "test_macro_f1",
        "test_samples",
        "train_samples",
        "trainable_params",
        "all_params",
    ):
        assert key in results
    assert (out / "hftl_config.yaml").is_file()
    assert not (out / "training_args.bin").exists()  # a pickle that holds hub_token
    config = json.loads((out / "config.json").read_text())
    assert sorted(config["id2label"].values()) == ["politics", "sport", "tech"]
    assert config["label2id"] == {"politics": 0, "sport": 1, "tech": 2}


def test_head_for_other_labels_is_replaced_and_same_labels_kept(tiny_options, tmp_path, capfd):
    """Continuing from a fine-tuned classifier keeps its head only when the label names match (another
    number of labels: tests/reliability/test_bad_inputs.py)."""
    from .conftest import make_rows, write_csv

    first = finetune(method="full", **tiny_options)
    head = load_file(str(first.output_dir / "model.safetensors"))["classifier.weight"]
    capfd.readouterr()

    same = finetune(
        **{
            **tiny_options,
            "model": str(first.output_dir),
            "output_dir": str(tmp_path / "same"),
            "max_steps": 1,
            "learning_rate": 1e-12,
        }
    )
    assert "head loaded from the checkpoint: classifier" in capfd.readouterr().err
    torch.testing.assert_close(same.trainer.model.classifier.weight.detach().cpu(), head, atol=1e-6, rtol=0)

    renamed = [
        {"text": r["text"], "label": {"sport": "a", "tech": "b", "politics": "c"}[r["label"]]}
        for r in make_rows(30)
    ]
    relabelled = finetune(
        **{
            **tiny_options,
            "model": str(first.output_dir),
            "dataset": str(write_csv(tmp_path / "abc.csv", renamed)),
            "output_dir": str(tmp_path / "abc"),
            "max_steps": 1,
            "learning_rate": 1e-12,
        }
    )
    assert "head was trained for other labels" in capfd.readouterr().err
    assert not torch.allclose(relabelled.trainer.model.classifier.weight.detach().cpu(), head)


def test_decoder_without_pad_token_trains_with_lora(tmp_path, text_csv):
    """GPT-style checkpoints: pad = eos, pad_token_id in the config, peft's default targets (c_attn)."""
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    from .conftest import TINY_TRAINING, tokenizer_source

    folder = tmp_path / "tiny-gpt2"
    config = GPT2Config(
        vocab_size=30522, n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=102, eos_token_id=102
    )
    GPT2Model(config).save_pretrained(folder)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(Path(tokenizer_source()) / "tokenizer.json"), eos_token="[SEP]"
    )
    tokenizer.pad_token = None
    assert tokenizer.pad_token is None
    tokenizer.save_pretrained(folder)
    result = finetune(
        model=str(folder),
        dataset=str(text_csv),
        method="lora",
        output_dir=str(tmp_path / "out"),
        **{**TINY_TRAINING, "per_device_eval_batch_size": 4},
    )
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["pad_token_id"] == tokenizer.convert_tokens_to_ids("[SEP]")
    assert json.loads((result.output_dir / "adapter" / "adapter_config.json").read_text())[
        "target_modules"
    ] == ["c_attn"]


def test_validation_is_not_evaluated_twice(tiny_options):
    """The final validation metrics reuse the evaluation that ran at the last step."""

    class CountEvaluations(TrainerCallback):
        calls = 0

        def on_evaluate(self, args, state, control, **kwargs):
            CountEvaluations.calls += 1

    options = {**tiny_options, "eval_strategy": "steps", "eval_steps": 2}
    result = finetune(method="full", callbacks=[CountEvaluations()], **options)
    assert CountEvaluations.calls == 1
    logged = [entry for entry in result.trainer.state.log_history if "eval_loss" in entry][-1]
    assert result.metrics["eval_accuracy"] == logged["eval_accuracy"]


def test_from_scratch_loads_no_pretrained_weights(tiny_options, tiny_bert_dir):
    snapshot = Snapshot()
    finetune(method="full", from_scratch=True, callbacks=[snapshot], **tiny_options)
    base = load_file(str(Path(tiny_bert_dir) / "model.safetensors"))
    start = snapshot.before["bert.encoder.layer.0.attention.self.query.weight"].cpu()
    assert not torch.equal(start, base["encoder.layer.0.attention.self.query.weight"])


def test_from_scratch_needs_full(tiny_options, no_model_build):
    from hftl import ConfigError

    with pytest.raises(
        ConfigError, match="--from_scratch trains random weights, which only --method full can do"
    ):
        finetune(method="lora", from_scratch=True, **tiny_options)
