"""Pipeline parity: stock ``transformers.pipeline()`` on a saved run reproduces the run's test accuracy and its
per-row test predictions exactly. Each data set is made so that the old mismatches show:

- text: the label's words fill the first ``max_length`` tokens and another topic's words the rest, so a
  pipeline that truncates anywhere but at the run's ``max_length`` sees another text;
- a ViT processor (resizes to its size, no crop) on tall images whose top and bottom thirds have another
  class's colour, which a resize-then-centre-crop cuts away;
- a ConvNeXt processor with ``crop_pct`` 0.5 on images whose centre quarter has the class colour and whose
  ring another class's: its crop keeps only the centre, a 0.875 crop keeps mostly the ring;
- a timm model trained at ``--image_size`` 32 (the demo's path: timm's data config, rebuilt at that size).

One short training run per model, shared by the module's tests.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    AutoImageProcessor,
    ConvNextConfig,
    ConvNextImageProcessor,
    ConvNextModel,
    ViTConfig,
    ViTImageProcessor,
    ViTModel,
    pipeline,
)

from hftl import finetune
from hftl.tasks.image_classification import ImageClassification, ImageInputs
from hftl.tasks.text_classification import TextClassification, TextInputs

from .conftest import TOPICS, write_csv

TRAINING = dict(
    per_device_train_batch_size=8,
    per_device_eval_batch_size=8,
    save_strategy="no",
    disable_tqdm=True,
    eval_strategy="no",
    learning_rate=2e-3,
    seed=0,
    dataloader_num_workers=0,  # no worker processes to start for a few dozen tiny images
)
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 50, 210)}
FILLER = "the a of and in on for".split()
MAX_LENGTH = 12  # [CLS], the 10 words of a text's head, [SEP]


class Run:
    """A finished run and what it evaluated: the raw test rows, their model inputs, the predictions."""

    def __init__(self, result, test_rows, test_inputs, predictions, references):
        self.result, self.test_rows, self.test_inputs = result, test_rows, test_inputs
        self.predictions, self.references = predictions, references

    @property
    def output_dir(self) -> str:
        return str(self.result.output_dir)


def run_recorded(task_class, inputs_class, **options) -> Run:
    """``finetune(**options)``, recording the raw test split, its preprocessed rows and the test predictions."""
    seen = {}
    preprocess, test_predictions = inputs_class.preprocess, task_class.test_predictions

    def recording_preprocess(self, data, *args, **kwargs):
        seen["rows"] = data["test"]
        out = preprocess(self, data, *args, **kwargs)
        seen["inputs"] = out["test"]
        return out

    def recording_predictions(self, output, metrics, labels):
        predictions = test_predictions(self, output, metrics, labels)
        seen["predictions"], seen["references"] = np.asarray(predictions), np.asarray(output.label_ids)
        return predictions

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inputs_class, "preprocess", recording_preprocess)
        patch.setattr(task_class, "test_predictions", recording_predictions)
        result = finetune(**{**TRAINING, **options})
    return Run(result, seen["rows"], seen["inputs"], seen["predictions"], seen["references"])


def assert_parity(run: Run, answers: list[str]) -> None:
    """``answers``: pipeline()'s top label for each test row, in order."""
    names = run.result.labels.names
    predicted = np.array([names.index(answer) for answer in answers])
    accuracy = float(np.mean(predicted == run.references))
    assert list(predicted) == list(run.predictions)
    assert accuracy == run.result.metrics["test_accuracy"]


# --- text -------------------------------------------------------------------------------------------


def long_text(topic: str, rng: np.random.Generator) -> str:
    """10 words (6 of ``topic``) the model sees, then 40 (30 of the next topic) that the run's truncation cuts."""
    other = list(TOPICS)[(list(TOPICS).index(topic) + 1) % len(TOPICS)]
    head = [*rng.choice(TOPICS[topic].split(), 6, replace=False), *rng.choice(FILLER, 4)]
    tail = [*rng.choice(TOPICS[other].split(), 30), *rng.choice(FILLER, 10)]
    rng.shuffle(head)
    rng.shuffle(tail)
    return " ".join(head + tail)


@pytest.fixture(scope="module")
def text_run(tiny_bert_dir, tmp_path_factory) -> Run:
    folder = tmp_path_factory.mktemp("long-texts")
    rng = np.random.default_rng(0)
    for split, count in (("train", 60), ("validation", 9), ("test", 30)):
        rows = [{"text": long_text(topic, rng), "label": topic} for topic in list(TOPICS) * (count // 3)]
        write_csv(folder / f"{split}.csv", rows)
    return run_recorded(
        TextClassification, TextInputs,
        model=tiny_bert_dir, dataset=str(folder), output_dir=str(folder / "out"), max_length=MAX_LENGTH,
        num_train_epochs=4, learning_rate=5e-3,
    )  # fmt: skip


def test_text_pipeline_with_truncation_reproduces_the_test_accuracy(text_run):
    texts = list(text_run.test_rows["text"])
    classify = pipeline("text-classification", model=text_run.output_dir, device="cpu")
    answers = [row["label"] for row in classify(texts, truncation=True)]
    assert_parity(text_run, answers)
    assert classify.tokenizer.model_max_length == MAX_LENGTH  # the saved tokenizer carries the run's length
    card = (Path(text_run.output_dir) / "README.md").read_text()
    assert 'print(classify("Shares fell sharply on Wall Street", truncation=True))' in card  # the call to use
    assert text_run.result.metrics["test_accuracy"] > 0.5  # learnt from the heads (chance: 1/3)


# --- images -----------------------------------------------------------------------------------------


def noisy(colour, shape, rng) -> np.ndarray:
    return np.clip(np.array(colour) + rng.normal(0, 20, (*shape, 3)), 0, 255)


def banded(name: str, rng) -> Image.Image:
    """24 x 72: the class colour in the middle third, the next class's above and below."""
    other = list(COLOURS)[(list(COLOURS).index(name) + 1) % 3]
    pixels = noisy(COLOURS[other], (72, 24), rng)
    pixels[24:48] = noisy(COLOURS[name], (24, 24), rng)
    return Image.fromarray(pixels.astype("uint8"))


def ringed(name: str, rng) -> Image.Image:
    """64 x 64: the class colour in the central 32 x 32, the previous class's around it."""
    other = list(COLOURS)[(list(COLOURS).index(name) - 1) % 3]
    pixels = noisy(COLOURS[other], (64, 64), rng)
    pixels[16:48, 16:48] = noisy(COLOURS[name], (32, 32), rng)
    return Image.fromarray(pixels.astype("uint8"))


def image_splits(folder: Path, draw) -> Path:
    """train/validation/test CSVs of image paths (relative to the CSVs) and colour names."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 24), ("validation", 3), ("test", 24)):
        rows = []
        for index, name in enumerate(list(COLOURS) * (count // 3)):
            path = folder / split / f"{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            draw(name, rng).save(path)
            rows.append({"image": f"{split}/{index}.png", "label": name})
        write_csv(folder / f"{split}.csv", rows)
    return folder


def image_run(folder: Path, model_dir: str, **options) -> Run:
    options = {"num_train_epochs": 3, **options}
    return run_recorded(
        ImageClassification, ImageInputs,
        model=model_dir, dataset=str(folder), output_dir=str(folder / "out"), task="image-classification",
        augment="none", **options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory) -> Run:
    """A tiny ViT whose processor resizes to 32 x 32 without a crop (ViT, BEiT, Swin, DeiT-style)."""
    model_dir = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    ViTModel(config).save_pretrained(model_dir)
    ViTImageProcessor(
        size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    ).save_pretrained(model_dir)
    return image_run(image_splits(tmp_path_factory.mktemp("bands"), banded), str(model_dir))


@pytest.fixture(scope="module")
def convnext_run(tmp_path_factory) -> Run:
    """A tiny ConvNeXt whose processor resizes to 32 / crop_pct = 64 and centre-crops 32."""
    model_dir = tmp_path_factory.mktemp("convnext")
    torch.manual_seed(0)
    ConvNextModel(ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2)).save_pretrained(
        model_dir
    )
    ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.5).save_pretrained(model_dir)
    return image_run(image_splits(tmp_path_factory.mktemp("rings"), ringed), str(model_dir))


@pytest.fixture(scope="module")
def timm_run(tmp_path_factory) -> Run:
    """A timm CNN through TimmWrapper (pretrained_cfg: 48 px, crop_pct 0.875) trained at --image_size 32."""
    import timm
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    model_dir = tmp_path_factory.mktemp("timm")
    torch.manual_seed(0)
    cfg = {**timm.create_model("test_efficientnet", pretrained=False).pretrained_cfg}
    cfg.update(input_size=(3, 48, 48), crop_pct=0.875)
    TimmWrapperForImageClassification(
        TimmWrapperConfig(architecture="test_efficientnet", pretrained_cfg=cfg)
    ).save_pretrained(model_dir)
    folder = image_splits(tmp_path_factory.mktemp("rings-timm"), ringed)
    # one epoch: what is checked is the preprocessing, whatever the model learnt
    return image_run(folder, str(model_dir), image_size=32, num_train_epochs=1)


@pytest.mark.parametrize("name", ["vit_run", "convnext_run", "timm_run"])
def test_image_pipeline_reproduces_the_test_accuracy(name, request):
    run = request.getfixturevalue(name)
    folder = Path(run.result.output_dir).parent
    with (folder / "test.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [run.result.labels.names.index(row["label"]) for row in rows] == list(run.references)  # same order
    paths = [str(folder / row["image"]) for row in rows]
    classify = pipeline("image-classification", model=run.output_dir, device="cpu")
    answers = [top[0]["label"] for top in classify(paths, top_k=1)]
    assert_parity(run, answers)


@pytest.mark.parametrize("name", ["vit_run", "convnext_run", "timm_run"])
def test_evaluation_inputs_are_the_saved_processors_bit_for_bit(name, request):
    run = request.getfixturevalue(name)
    processor = AutoImageProcessor.from_pretrained(run.output_dir)
    images = [image.convert("RGB") for image in run.test_rows["image"]]
    expected = processor(images=images, return_tensors="pt")["pixel_values"]
    evaluated = torch.stack([row["pixel_values"] for row in run.test_inputs])
    assert evaluated.shape == expected.shape and torch.equal(evaluated, expected)
    if name == "timm_run":  # the size trained at is the saved one, without a crop margin
        assert processor.data_config["input_size"] == (3, 32, 32) and processor.data_config["crop_pct"] == 1.0
