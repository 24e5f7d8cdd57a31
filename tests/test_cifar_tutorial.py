"""docs/tutorials/cifar10-resnet18.md, checked: a ResNet-18 (timm's ``resnet18``, built from its config, saved as
transformers' TimmWrapper does it) on CIFAR-shaped data (32x32 RGB; a parquet copy with ``uoft-cs/cifar10``'s
``img``/``label`` columns, and a train/test class-folder layout). The page's claims: a new 10-way head; the
linear probe really freezes the backbone, BatchNorm running statistics included; the model sees the
pretrained resolution, not 32 px; augmentation in training only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Image
from PIL import Image as PILImage
from transformers import AutoImageProcessor, TrainerCallback

from hftl import finetune

from .test_image import pipeline_labels
from .test_timm import changed_state

timm = pytest.importorskip("timm")

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
STEPS = dict(
    max_steps=2, per_device_train_batch_size=4, per_device_eval_batch_size=16, save_strategy="no",
    disable_tqdm=True, eval_strategy="no", learning_rate=1e-2, dataloader_num_workers=0,
)  # fmt: skip


def _image(index: int) -> PILImage.Image:
    """A 32x32 RGB image whose colour follows its class (CIFAR-10's shape, not its content)."""
    rng = np.random.default_rng(index)
    colour = np.array([(index % 10) * 25, 255 - (index % 10) * 25, 128])
    return PILImage.fromarray(np.clip(colour + rng.normal(0, 30, (32, 32, 3)), 0, 255).astype("uint8"))


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory):
    """timm's resnet18 as ``timm/resnet18.a1_in1k`` holds it (TimmWrapper config, resnet18.a1_in1k's
    pretrained_cfg, a 1000-class ImageNet head; 11.7 M parameters), with random weights: built offline."""
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    torch.manual_seed(0)
    pretrained_cfg = dict(timm.create_model("resnet18", pretrained=False).pretrained_cfg)
    config = TimmWrapperConfig(architecture="resnet18", pretrained_cfg=pretrained_cfg, num_labels=1000)
    folder = tmp_path_factory.mktemp("resnet18")
    TimmWrapperForImageClassification(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def cifar_parquet(tmp_path):
    """train.parquet and test.parquet with uoft-cs/cifar10's features: ``img`` (Image) and ``label``
    (ClassLabel with the 10 CIFAR names); no validation split, as on the Hub."""
    features = Features({"img": Image(), "label": ClassLabel(names=CIFAR10)})
    folder = tmp_path / "cifar10"
    folder.mkdir()
    for split, rows, offset in (("train", 40, 0), ("test", 10, 1000)):
        indices = range(offset, offset + rows)
        Dataset.from_dict(
            {"img": [_image(i) for i in indices], "label": [i % 10 for i in indices]}, features=features
        ).to_parquet(folder / f"{split}.parquet")
    return folder


@pytest.fixture
def cifar_folder(tmp_path):
    """train/<class>/*.png and test/<class>/*.png, 32x32 RGB."""
    root = tmp_path / "cifar10_png"
    for split, rows, offset in (("train", 30, 0), ("test", 10, 1000)):
        for index in range(offset, offset + rows):
            folder = root / split / CIFAR10[index % 10]
            folder.mkdir(parents=True, exist_ok=True)
            _image(index).save(folder / f"{index}.png")
    return root


class Watch(TrainerCallback):
    """The state_dict at the start of training, and the shape of every batch the model is given."""

    def __init__(self):
        self.before, self.shapes = {}, {"train": set(), "eval": set()}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {name: t.detach().cpu().clone() for name, t in model.state_dict().items()}

        def record(module, args, kwargs):
            pixels = kwargs.get("pixel_values", args[0] if args else None)
            self.shapes["train" if module.training else "eval"].add(tuple(pixels.shape[1:]))

        model.register_forward_pre_hook(record, with_kwargs=True)


def test_linear_probe_on_cifar_parquet(resnet18, cifar_parquet, tmp_path):
    watch = Watch()
    result = finetune(
        task="image-classification", model=resnet18, dataset=str(cifar_parquet), method="linear-probe",
        output_dir=str(tmp_path / "out"), callbacks=[watch], **STEPS,
    )  # fmt: skip
    # uoft-cs/cifar10's columns are found without --image_column / --label_column, names from the ClassLabel
    assert result.labels.names == CIFAR10
    model = result.trainer.model
    # a new head sized to the 10 classes, not the checkpoint's 1000 ImageNet classes
    assert json.loads((Path(resnet18) / "config.json").read_text())["num_classes"] == 1000
    assert model.timm_model.fc.weight.shape == (10, 512)
    # real freezing: every backbone tensor, BatchNorm running statistics included, is bit-equal
    assert any(name.endswith("running_mean") for name in watch.before)
    assert changed_state(model, watch.before) == {"timm_model.fc.weight", "timm_model.fc.bias"}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"timm_model.fc.weight", "timm_model.fc.bias"}
    # 32x32 images reach the model at the pretrained resolution (pretrained_cfg input_size), in training too
    size = tuple(json.loads((tmp_path / "out" / "config.json").read_text())["pretrained_cfg"]["input_size"])
    assert size == (3, 224, 224) == tuple(timm.create_model("resnet18").pretrained_cfg["input_size"])
    assert watch.shapes == {"train": {size}, "eval": {size}}
    processor = AutoImageProcessor.from_pretrained(tmp_path / "out")  # pipeline() preprocesses the same way
    assert tuple(processor(_image(0), return_tensors="pt")["pixel_values"].shape[1:]) == size
    # augmentation in training only: a training image differs between reads, an evaluation image does not
    train, test = result.trainer.train_dataset, result.trainer.eval_dataset
    assert not torch.equal(train[0]["pixel_values"], train[0]["pixel_values"])
    assert torch.equal(test[0]["pixel_values"], test[0]["pixel_values"])


def test_full_fine_tuning_on_a_cifar_image_folder(run_forked, resnet18, cifar_folder, tmp_path):
    watch = Watch()
    result = finetune(
        task="image-classification", model=resnet18, dataset=str(cifar_folder), method="full",
        output_dir=str(tmp_path / "out"), callbacks=[watch], **STEPS,
    )  # fmt: skip
    assert result.labels.names == sorted(CIFAR10)  # folder names
    model = result.trainer.model
    assert model.timm_model.fc.out_features == 10
    changed = changed_state(model, watch.before)
    # full fine-tuning trains the backbone and its BatchNorm statistics move with it
    assert "timm_model.conv1.weight" in changed and "timm_model.bn1.running_mean" in changed
    assert watch.shapes["train"] == {(3, 224, 224)}
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["num_classes"] == 10 and config["label_names"] == sorted(CIFAR10)
    # stock pipeline() loads the output and answers with CIFAR-10's names
    assert pipeline_labels(run_forked, result.output_dir, cifar_folder / "test" / "cat" / "1003.png") <= set(CIFAR10)
