"""Multi-label classification, one mechanism for text and images: list labels or delimited strings,
BCE, a decision threshold tuned on validation and saved with the model."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from datasets import Dataset, List, Value

from hftl import DataError, finetune
from hftl.data.labels import build_label_space, encode_labels
from hftl.tasks._classification_metrics import multi_label_metrics, tune_threshold

from .conftest import REPO, TOPICS

TOPIC_NAMES = sorted(TOPICS)


def multi_label_rows(n: int, seed: int = 0) -> list[dict]:
    """Texts mixing the words of one or two topics; the labels are those topics."""
    rng = random.Random(seed)
    rows = []
    for index in range(n):
        topics = sorted(rng.sample(TOPIC_NAMES, 1 + index % 2))
        words = [word for topic in topics for word in rng.sample(TOPICS[topic].split(), 4)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "labels": topics})
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_list_labels_make_a_multi_label_space_with_multi_hot_rows():
    train = Dataset.from_dict({"labels": [["b", "a"], ["c"], []]})
    space = build_label_space(train, "labels")
    assert space.multi_label and space.names == ["a", "b", "c"]
    encoded = encode_labels(train, "train", "labels", space)
    assert encoded.features["labels"] == List(Value("float32"))
    assert encoded["labels"] == [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_delimited_strings_are_multi_label_only_with_a_delimiter():
    train = Dataset.from_dict({"labels": ["sport|tech", "tech", "politics| sport"]})
    assert not build_label_space(train, "labels").multi_label
    space = build_label_space(train, "labels", delimiter="|")
    assert space.multi_label and space.names == ["politics", "sport", "tech"]
    assert encode_labels(train, "train", "labels", space, "|")["labels"][2] == [1.0, 1.0, 0.0]


def test_unseen_multi_label_names_are_refused():
    space = build_label_space(Dataset.from_dict({"labels": [["a"], ["b"]]}), "labels")
    with pytest.raises(DataError, match=r"test split has labels the train split lacks \('zzz'\)"):
        encode_labels(Dataset.from_dict({"labels": [["a", "zzz"]]}), "test", "labels", space)


def test_metrics_and_threshold_tuning():
    references = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    probabilities = np.array([[0.3, 0.1], [0.2, 0.35], [0.4, 0.3], [0.1, 0.05]])
    at_half = multi_label_metrics(probabilities, references, 0.5)
    assert at_half["micro_f1"] == 0.0 and at_half["mAP"] == 1.0  # ranking is perfect, threshold is not
    threshold = tune_threshold(probabilities, references)
    assert 0.1 < threshold <= 0.3
    assert multi_label_metrics(probabilities, references, threshold)["subset_accuracy"] == 1.0


def test_multi_label_text_through_the_recipe(run_forked, tiny_bert_dir, tmp_path):
    data = write_jsonl(tmp_path / "topics.jsonl", multi_label_rows(90))
    exit_code, output = run_forked(  # one log of stdout and stderr (see _forked.py)
        "--model",
        tiny_bert_dir,
        "--dataset",
        data,
        "--output_dir",
        tmp_path / "out",
        "--num_train_epochs",
        "2",
        "--learning_rate",
        "1e-3",
        "--per_device_train_batch_size",
        "8",
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
        script=REPO / "recipes" / "text_cls.py",
        env={"HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
    )
    assert exit_code == 0, output[-3000:]
    assert "multi-label" in output and "decision threshold" in output
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    results = json.loads((tmp_path / "out" / "all_results.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert config["multi_label_threshold"] == results["threshold"]
    assert sorted(config["id2label"].values()) == TOPIC_NAMES
    for key in ("test_micro_f1", "test_macro_f1", "test_mAP", "test_subset_accuracy", "eval_micro_f1"):
        assert 0.0 <= results[key] <= 1.0
    report = json.loads((tmp_path / "out" / "test_report.json").read_text())
    assert set(TOPIC_NAMES) <= set(report)

    from transformers import pipeline

    classify = pipeline("text-classification", model=str(tmp_path / "out"), top_k=None)
    scores = classify("match goal team election vote")[0]
    assert {score["label"] for score in scores} == set(TOPIC_NAMES)
    assert abs(sum(score["score"] for score in scores) - 1.0) > 1e-3  # sigmoid per class, not softmax


def test_multi_label_images_with_a_delimited_csv_column(tmp_path):
    import torch
    from transformers import ViTConfig, ViTModel

    from .test_image import COLOURS, make_image, save_backbone

    torch.manual_seed(0)
    model_dir = save_backbone(
        tmp_path / "vit",
        ViTModel(
            ViTConfig(
                image_size=32,
                patch_size=8,
                hidden_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=64,
            )
        ),
    )
    rows = []
    for index in range(30):
        names = sorted(random.Random(index).sample(list(COLOURS), 1 + index % 2))
        colour = tuple(int(np.mean([COLOURS[name][channel] for name in names])) for channel in range(3))
        make_image(colour, index).save(tmp_path / f"{index}.png")
        rows.append(f"{index}.png,{';'.join(names)}\n")
    (tmp_path / "images.csv").write_text("image,colours\n" + "".join(rows))
    result = finetune(
        task="image-classification",
        model=model_dir,
        dataset=str(tmp_path / "images.csv"),
        label_column="colours",
        label_delimiter=";",
        output_dir=str(tmp_path / "out"),
        max_steps=3,
        per_device_train_batch_size=8,
        save_strategy="no",
        disable_tqdm=True,
        eval_strategy="no",
    )
    assert result.labels.multi_label and result.labels.names == sorted(COLOURS)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["multi_label_threshold"] == result.metrics["threshold"]
    assert "test_mAP" in result.metrics and "test_mAP" in result.table()
