"""What an image model expects (size, normalisation, interpolation) and the transforms built from it: hftl's
training augmentation, and the model's own image processor for evaluation, as ``pipeline()`` runs it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image as PILImage
from torchvision.transforms import v2

__all__ = [
    "ImageSettings",
    "settings_from_processor",
    "build_transforms",
    "processor_transform",
    "set_processor_size",
]

_INTERPOLATION = {
    "bicubic": v2.InterpolationMode.BICUBIC,
    "bilinear": v2.InterpolationMode.BILINEAR,
    "nearest": v2.InterpolationMode.NEAREST,
}


@dataclass(frozen=True)
class ImageSettings:
    """What the model expects: square input size, normalisation and resize interpolation."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    crop_pct: float = 0.875


def settings_from_processor(processor) -> ImageSettings:
    """Read size/mean/std from a transformers image processor or timm's data config."""
    data_config = getattr(processor, "data_config", None)
    if data_config:  # TimmWrapperImageProcessor
        return ImageSettings(
            size=int(data_config["input_size"][-1]),
            mean=tuple(data_config["mean"]),
            std=tuple(data_config["std"]),
            interpolation=str(data_config.get("interpolation", "bicubic")),
            crop_pct=float(data_config.get("crop_pct") or 0.875),
        )
    size = getattr(processor, "crop_size", None) or getattr(processor, "size", None) or {}
    if not isinstance(size, dict):
        size = dict(size)
    edge = size.get("height") or size.get("shortest_edge") or 224
    resample = getattr(processor, "resample", None)
    return ImageSettings(
        size=int(edge),
        mean=tuple(getattr(processor, "image_mean", None) or (0.5, 0.5, 0.5)),
        std=tuple(getattr(processor, "image_std", None) or (0.5, 0.5, 0.5)),
        interpolation="bicubic" if resample in (3, PILImage.Resampling.BICUBIC) else "bilinear",
    )


def build_transforms(settings: ImageSettings, augment: str):
    """(train, eval) torchvision transforms. ``augment``: crop-flip, crop, trivialaugment, randaugment, none.

    A run trains with the train transform (unless ``none``) and evaluates with :func:`processor_transform`;
    this eval transform (resize to size/crop_pct, centre crop) is an approximation kept for benchmarks."""
    interpolation = _INTERPOLATION.get(settings.interpolation, v2.InterpolationMode.BILINEAR)
    normalise = [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(settings.mean, settings.std),
    ]
    resize = int(round(settings.size / settings.crop_pct))
    evaluation = v2.Compose(
        [v2.Resize(resize, interpolation=interpolation), v2.CenterCrop(settings.size), *normalise]
    )
    if augment == "none":
        return evaluation, evaluation
    train = [v2.RandomResizedCrop(settings.size, scale=(0.35, 1.0), interpolation=interpolation)]
    if augment in ("crop-flip", "trivialaugment", "randaugment"):
        train.append(v2.RandomHorizontalFlip())
    if augment == "trivialaugment":
        train.append(v2.TrivialAugmentWide(interpolation=interpolation))
    elif augment == "randaugment":
        train.append(v2.RandAugment(interpolation=interpolation))
    return v2.Compose([*train, *normalise]), evaluation


def processor_transform(processor):
    """One RGB image -> pixel values, through ``processor`` itself, as ``pipeline("image-classification")``
    calls the saved model's processor (one image a call), so evaluation sees exactly what inference sees.

    Args:
        processor: A transformers image processor (``TimmWrapperImageProcessor`` for timm models).

    Example:
        >>> transform = processor_transform(AutoImageProcessor.from_pretrained("outputs/run"))
        >>> transform(PILImage.open("photo.jpg").convert("RGB")).shape
        torch.Size([3, 224, 224])
    """

    def transform(image: PILImage.Image) -> torch.Tensor:
        return processor(images=image, return_tensors="pt")["pixel_values"][0]

    return transform


def set_processor_size(processor, size: int) -> None:
    """Record the training input size in the processor, so the saved model preprocesses identically: a
    square ``size`` input, without a crop margin (resize the short side to ``size`` and centre-crop, or
    resize to ``size`` x ``size`` where the processor resizes that way)."""
    data_config = getattr(processor, "data_config", None)
    if data_config:
        data_config["input_size"] = (3, size, size)
        data_config["crop_pct"] = 1.0
        import timm.data  # only for timm models; timm is imported by the processor already

        # TimmWrapperImageProcessor builds its transform once; rebuild it as a reload from config.json would
        processor.val_transforms = timm.data.create_transform(**data_config, is_training=False)
        return
    square = {"height": size, "width": size}
    if getattr(processor, "size", None) is not None:
        # keep the kind of resize: ConvNeXt/BiT/CLIP processors need "shortest_edge"
        shortest = dict(processor.size).get("shortest_edge") is not None
        processor.size = {"shortest_edge": size} if shortest else square
    if getattr(processor, "crop_size", None) is not None:
        processor.crop_size = square
    if getattr(processor, "crop_pct", None) is not None:  # ConvNeXt: resize to size / crop_pct, crop size
        processor.crop_pct = 1.0
