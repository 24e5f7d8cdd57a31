"""Image classification: any AutoModelForImageClassification checkpoint, timm models through TimmWrapper."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from datasets import Dataset, DatasetDict, Image
from PIL import Image as PILImage
from PIL import ImageOps
from transformers import AutoImageProcessor, AutoModelForImageClassification

from .._batch import TARGET_COLUMNS
from .._log import log
from ..data.builtin import builtin_datasets
from ..data.columns import IMAGE_COLUMN_NAMES
from ..errors import DataError
from ..options.config import DataArguments, ModelArguments
from ..run.cpu import default_dataloader_workers
from ._base import Task
from ._image_transforms import (
    ImageSettings,
    build_transforms,
    processor_transform,
    set_processor_size,
    settings_from_processor,
)
from .classification import ClassificationTask

__all__ = ["ImageInputs", "ImageClassification", "ImageSettings", "processor_transform"]

# Longest side over shortest side kept. Resizing scales the short side to the model's size, so a 1x12000
# strip would become 256 x 3 million pixels (GBs) before the crop; cutting it to its central 10:1 part
# first loses nothing the center crop would keep, and bounds the resize at 10x a square's work.
MAX_ASPECT_RATIO = 10


def _cap_aspect_ratio(image: PILImage.Image) -> PILImage.Image:
    width, height = image.size
    short, long = sorted((width, height))
    if long <= MAX_ASPECT_RATIO * short:
        return image
    keep = MAX_ASPECT_RATIO * short
    if width > height:
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height))
    top = (height - keep) // 2
    return image.crop((0, top, width, top + keep))


def to_rgb(image: PILImage.Image) -> PILImage.Image:
    """Apply EXIF orientation, cut an extreme strip to its central 10:1 part, and convert any mode (L, P,
    RGBA, CMYK, I;16) to RGB."""
    image = _cap_aspect_ratio(ImageOps.exif_transpose(image))
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit: scale to 8 bits before RGB
        image = image.point(lambda value: value / 256).convert("L")
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = PILImage.new("RGBA", image.size, (255, 255, 255, 255))
        image = PILImage.alpha_composite(background, image)
    return image.convert("RGB")


class ImageInputs(Task):
    """What every task on one image column shares: column inference, file checks, the image processor,
    augmentation and the collator. An image task combines it with what it predicts
    (``class ImageClassification(ImageInputs, ClassificationTask)``).

    Images are decoded, converted to RGB and augmented lazily (``Dataset.with_transform``), inside
    dataloader workers when ``--dataloader_num_workers`` > 0; nothing is decoded up front.
    """

    modality = "image"
    usage_example = '"photo.jpg"'  # the card's pipeline() call
    auto_options = {"image_size": None, "augment": "crop-flip"}

    def image_settings(self, processor) -> ImageSettings:
        return settings_from_processor(processor)

    def find_inputs(self, train: Dataset, label_column: str, data_args: DataArguments) -> list[str]:
        columns = train.column_names
        if data_args.image_column:
            if data_args.image_column not in columns:
                raise DataError(
                    f"Image column '{data_args.image_column}' not found; columns are: {', '.join(columns)}. "
                    "Fix --image_column."
                )
            return [data_args.image_column]
        typed = [name for name in columns if isinstance(train.features[name], Image)]
        named = [name for name in columns if name.lower() in IMAGE_COLUMN_NAMES and name != label_column]
        found = typed or named
        if len(found) == 1:
            return found
        if not found:
            raise DataError(
                f"No image column found; columns are: {', '.join(columns)}. Pass --image_column NAME "
                "(an Image feature, or file paths relative to the data file)."
            )
        raise DataError(f"Several columns could be the image ({', '.join(found)}); pass --image_column NAME.")

    def check_inputs(
        self, split_name: str, split: Dataset, input_columns: list[str], data_args: DataArguments
    ) -> Dataset:
        column = input_columns[0]
        feature = split.features[column]
        if len(split) == 0:
            return split
        if isinstance(feature, Image) and data_args.dataset in builtin_datasets():
            return split  # built from known-good arrays: no scan needed
        if isinstance(feature, Image):
            return drop_unreadable_images(split, split_name, column, data_args.max_bad_image_fraction)
        if getattr(feature, "dtype", None) not in ("string", "large_string"):
            raise DataError(
                f"Image column '{column}' of the {split_name} split holds {feature} values, not images or "
                "paths; pass the right column with --image_column."
            )
        source = Path(data_args.dataset).expanduser()
        base = source if source.is_dir() else source.parent
        paths = [(base / value).resolve() if value else None for value in split[column]]
        missing = [str(path) for path in paths if path is None or not path.is_file()]
        if missing:
            raise DataError(
                f"{len(missing)} image paths in the {split_name} split don't exist (e.g. {missing[0]}); paths "
                f"are read relative to {base}."
            )
        split = split.map(
            lambda batch, idx: {column: [str(paths[i]) for i in idx]}, with_indices=True, batched=True
        )
        split = split.cast_column(column, Image())
        return drop_unreadable_images(split, split_name, column, data_args.max_bad_image_fraction)

    def load_config(self, path: str, labels, model_args: ModelArguments, processor=None):
        config = super().load_config(path, labels, model_args, processor)
        if hasattr(config, "label_names"):
            # TimmWrapperConfig writes a loaded `label_names` back unchanged (to_dict uses setdefault),
            # so the checkpoint's old names would be saved with the new head
            config.label_names = list(labels.names)
        model_args_of_timm = getattr(config, "model_args", None)
        if isinstance(model_args_of_timm, dict) and "num_classes" in model_args_of_timm:
            # timm >= 1.0.2x exports record num_classes here too; TimmWrapper passes it a second time
            config.model_args = {
                key: value for key, value in model_args_of_timm.items() if key != "num_classes"
            }
        return config

    def load_processor(self, path: str, model_args: ModelArguments):
        return AutoImageProcessor.from_pretrained(
            path, revision=model_args.revision, trust_remote_code=model_args.trust_remote_code
        )

    def adjust_training_args(self, training_args) -> None:
        super().adjust_training_args(training_args)  # what the task predicts may adjust too
        # the transform needs the raw image column, which Trainer would drop as "unused"
        training_args.remove_unused_columns = False
        if training_args.train_sampling_strategy == "group_by_length":  # images have no length
            training_args.train_sampling_strategy = "random"
        if getattr(training_args, "auto_dataloader_workers", False):
            training_args.dataloader_num_workers = default_dataloader_workers(training_args.world_size)
            training_args.dataloader_persistent_workers = True  # no re-spawn for every evaluation
            log(
                f"dataloader: {training_args.dataloader_num_workers} worker process(es) decode and augment images"
            )

    def preprocess(
        self,
        data: DatasetDict,
        processor,
        input_columns: list[str],
        max_length: int | None,
        data_args: DataArguments,
    ) -> DatasetDict:
        settings = self.image_settings(processor)
        if data_args.image_size:
            settings = ImageSettings(
                data_args.image_size, settings.mean, settings.std, settings.interpolation, 1.0
            )
            set_processor_size(processor, data_args.image_size)
        augment = data_args.augment or "crop-flip"
        # evaluation (and training without augmentation) through the processor the model is saved with
        eval_transform = processor_transform(processor)
        train_transform = eval_transform if augment == "none" else build_transforms(settings, augment)[0]
        log(
            f"images: {settings.size}px, augment {data_args.augment}, mean {settings.mean}, std {settings.std}; "
            f"evaluation through the model's own {type(processor).__name__}, as pipeline() preprocesses"
        )
        column = input_columns[0]

        def transform_with(transform):
            def apply(batch):
                pixels = [transform(to_rgb(image)) for image in batch[column]]
                # other columns (labels, cached teacher logits) pass through
                return {
                    "pixel_values": pixels,
                    **{key: value for key, value in batch.items() if key != column},
                }

            return apply

        out = DatasetDict()
        for name, split in data.items():
            out[name] = split.with_transform(
                transform_with(train_transform if name == "train" else eval_transform)
            )
        return out

    def on_model_built(self, model, processor, data_args: DataArguments, training_args) -> None:
        convolutions = sum(isinstance(module, torch.nn.Conv2d) for module in model.modules())
        if training_args.device.type == "cuda" and convolutions > 1:  # a CNN, not a ViT's one patch conv
            # NHWC lets cuDNN use tensor-core kernels for convolutions (bf16/TF32)
            model.to(memory_format=torch.channels_last)
            log("channels_last memory format (a CNN on a GPU)")
        pretrained_cfg = getattr(model.config, "pretrained_cfg", None)
        if data_args.image_size and isinstance(pretrained_cfg, dict):  # timm: the processor reads config.json
            pretrained_cfg["input_size"] = (3, data_args.image_size, data_args.image_size)
            pretrained_cfg["crop_pct"] = 1.0

    def collator(self, processor, pad_to_multiple_of: int | None):
        def collate(rows):
            batch = {"pixel_values": torch.stack([row["pixel_values"] for row in rows])}
            for key in TARGET_COLUMNS:
                if key in rows[0]:
                    batch[key] = torch.tensor([row[key] for row in rows])
            return batch

        return collate


def _inspect(item: dict) -> tuple[str | None, tuple[str, str] | None]:
    """(why the image can't be used or ``None``, (kind, detail) of a change made to it or ``None``). The image
    is decoded fully (so truncation shows) and put through what training does to it, EXIF orientation
    included: ``datasets`` applies that on every read, and a malformed EXIF block fails there, mid-training."""
    try:
        source = io.BytesIO(item["bytes"]) if item.get("bytes") else item.get("path")
        with warnings.catch_warnings():
            # PIL only warns between its pixel limit and twice that; either way it's a suspected bomb
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(source) as image:
                image.load()
                frames = getattr(image, "n_frames", 1)
                try:
                    upright = ImageOps.exif_transpose(image)
                except Exception:  # noqa: BLE001 - PIL raises many types for a damaged EXIF block
                    return "malformed EXIF block", None
                to_rgb(upright)
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        return f"over PIL's decompression-bomb limit of {PILImage.MAX_IMAGE_PIXELS} pixels", None
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
        return type(exc).__name__, None
    width, height = upright.size
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        return None, ("elongated", f"{width}x{height}")
    if frames > 1:
        return None, ("animated", f"{frames} frames")
    return None, None


def _log_notes(notes: list[tuple[str, tuple[str, str]]], split_name: str, total: int) -> None:
    """One counted line per kind of image that is used after a change."""
    elongated = [(path, detail) for path, (kind, detail) in notes if kind == "elongated"]
    animated = [(path, detail) for path, (kind, detail) in notes if kind == "animated"]
    if elongated:
        listing = ", ".join(f"{Path(path).name} {size}" for path, size in elongated[:3])
        log(
            f"{len(elongated)} image(s) of {total} in the {split_name} split are longer than {MAX_ASPECT_RATIO}:1 "
            f"({listing}{' ...' if len(elongated) > 3 else ''}): cut to their central {MAX_ASPECT_RATIO}:1 part "
            "before resizing, which keeps the resize small; the center crop keeps only the middle anyway"
        )
    if animated:
        listing = ", ".join(f"{Path(path).name} {count}" for path, count in animated[:3])
        log(
            f"{len(animated)} image(s) of {total} in the {split_name} split have several frames "
            f"({listing}{' ...' if len(animated) > 3 else ''}); only the first frame is used"
        )


def drop_unreadable_images(split: Dataset, split_name: str, column: str, max_bad_fraction: float) -> Dataset:
    """Pre-flight scan: decode every image once; skip the unreadable ones (listed by path) unless more than
    ``max_bad_fraction`` of the split is bad. The files themselves are never touched."""
    raw = split.cast_column(column, Image(decode=False))[column]
    bad, notes = [], []
    for index, item in enumerate(raw):
        why, note = _inspect(item)
        if why:
            bad.append((index, item.get("path") or f"row {index}", why))
        elif note:
            notes.append((item.get("path") or f"row {index}", note))
    _log_notes(notes, split_name, len(split))
    if not bad:
        return split
    listing = "; ".join(f"{path} ({why})" for _, path, why in bad[:5]) + (" ..." if len(bad) > 5 else "")
    if len(bad) > max_bad_fraction * len(split):
        raise DataError(
            f"{len(bad)} of {len(split)} images in the {split_name} split can't be read ({listing}); fix or "
            f"remove them, or raise --max_bad_image_fraction (now {max_bad_fraction})."
        )
    log(f"skipping {len(bad)} unreadable image(s) of {len(split)} in the {split_name} split: {listing}")
    skipped = {index for index, _, _ in bad}
    return split.select([index for index in range(len(split)) if index not in skipped])


class ImageClassification(ImageInputs, ClassificationTask):
    """Image classification (single- or multi-label)."""

    name = "image-classification"
    pipeline_tag = "image-classification"
    auto_model_class = AutoModelForImageClassification
    demo_model = "timm/tf_efficientnet_lite0.in1k"
    demo_dataset = "mnist"
