"""The bad-input battery's shared parts: ``Case``, ``Env`` and the fixture writers the case tables use.

Case tables live in ``test_bad_inputs.py`` (the original cases) and in ``_cases_*.py`` (one per class of
input); ``test_bad_inputs.py`` runs them all.
"""


from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from ..conftest import make_rows, write_csv

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 50, 210)}


@dataclass(frozen=True)
class Case:
    """One bad input.

    Args:
        id: Short kebab-case name, the pytest id.
        what: The bad input, in a few words (docs table).
        hftl_does: What hftl does about it, one sentence (docs table).
        make: Writes the fixture (``env.tmp`` is the test's ``tmp_path``) and returns the ``finetune()``
            options that differ from the tiny text defaults.
        error: For a refused case, the error class.
        message: A fragment of the error line (refused) or of a log line (handled).
        check: Handled cases: more assertions on what reached the model build (``seen``) and the log.
        build: Handled cases: let the model build run before stopping (for checks on the built model).
    """

    id: str
    what: str
    hftl_does: str
    make: Callable[[Env], dict]
    error: type[Exception] | None = None
    message: str = ""
    check: Callable[[dict, str], None] | None = None
    build: bool = False

    @property
    def test(self) -> str:
        return f"test_bad_inputs.py::test_{'refused' if self.error else 'handled'}[{self.id}]"


class Env:
    """What a fixture writer needs: the test's folder, model fixtures on demand, and monkeypatch."""

    def __init__(self, tmp: Path, request, monkeypatch):
        self.tmp, self._request, self.monkeypatch = tmp, request, monkeypatch

    def fixture(self, name: str):
        return self._request.getfixturevalue(name)

    @property
    def bert(self) -> str:
        return self.fixture("tiny_bert_dir")

    def bert_copy(self, name: str) -> Path:
        """A copy of the tiny BERT folder inside tmp, to spoil."""
        return Path(shutil.copytree(self.bert, self.tmp / name))

    def csv(self, name: str, text: str | bytes) -> str:
        path = self.tmp / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return str(path)


# --- fixture writers --------------------------------------------------------------------------------


def rows_csv(rows: list[dict], columns: tuple[str, ...] = ("text", "label")) -> str:
    return ",".join(columns) + "\n" + "".join(",".join(str(row[c]) for c in columns) + "\n" for row in rows)


def topics(n: int = 30, **label_of) -> list[dict]:
    """``make_rows`` with labels replaced: ``label_of=lambda index, row: value``."""
    relabel = label_of.get("label_of")
    return [
        {**row, "label": relabel(index, row) if relabel else row["label"]}
        for index, row in enumerate(make_rows(n))
    ]


def split_folder(env: Env, train: list[dict], **others: list[dict] | str) -> str:
    folder = env.tmp / "data" / "splits"
    write_csv(folder / "train.csv", train)
    for name, rows in others.items():
        if isinstance(rows, str):
            (folder / f"{name}.csv").write_text(rows)
        else:
            write_csv(folder / f"{name}.csv", rows)
    return str(folder)


def class_label_parquet(env: Env, bad_id: int) -> str:
    """A parquet file as ``datasets`` writes it (ClassLabel names in its schema metadata), holding one
    id outside the names: datasets itself refuses to write that, a pandas round trip does not."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features(text=Value("string"), label=ClassLabel(names=["politics", "sport", "tech"]))
    good = Dataset.from_dict({"text": ["x"], "label": [0]}, features=features)
    rows = make_rows(30)
    ids = [index % 3 for index in range(30)]
    ids[4] = bad_id
    table = pa.table({"text": [row["text"] for row in rows], "label": pa.array(ids, pa.int64())})
    table = table.replace_schema_metadata(good.data.schema.metadata)
    path = env.tmp / "data" / "labels.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return str(path)


def tokenizer_without(env: Env, keep: dict) -> dict:
    """The tiny BERT with a tokenizer that has no pad token (and only the special tokens in ``keep``)."""
    from transformers import PreTrainedTokenizerFast

    folder = env.bert_copy("no-pad")
    backend = Path(env.bert) / "tokenizer.json"
    for file in [*folder.glob("tokenizer*"), *folder.glob("special_tokens*")]:
        file.unlink()
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(backend), **keep)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(folder)
    return {"model": str(folder)}


def classifier_dir(env: Env, name: str, labels: list[str]) -> Path:
    """A tiny BERT sequence classifier for ``labels`` (untrained: only its shapes and names matter)."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
    )
    folder = env.tmp / name
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(env.bert).save_pretrained(folder)
    return folder


def image(colour, size=(16, 16), mode="RGB") -> Image.Image:
    return Image.new("RGB", size, COLOURS[colour]).convert(mode)


def image_folder(env: Env, n: int = 18, save=None) -> Path:
    """``n`` small PNGs in one subfolder per colour; ``save(path, colour, index)`` writes another kind."""
    root = env.tmp / "photos"
    for index in range(n):
        colour = list(COLOURS)[index % 3]
        (root / colour).mkdir(parents=True, exist_ok=True)
        if save:
            save(root / colour, colour, index)
        else:
            image(colour).save(root / colour / f"{index}.png")
    return root


def vit(env: Env) -> dict:
    return {"task": "image-classification", "model": env.fixture("tiny_vit")}


def images(env: Env, add=None, **options) -> dict:
    """Options for the tiny ViT on an image folder; ``add(root)`` adds the bad file(s)."""
    root = image_folder(env)
    if add:
        add(root)
    return {**vit(env), "dataset": str(root), **options}


def jpeg_bytes(colour) -> bytes:
    buffer = io.BytesIO()
    image(colour, (40, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


def exif_rotated(folder: Path, colour: str, index: int) -> None:
    """40x20, the left half coloured and the right half black, tagged "rotate 90 degrees on display"."""
    picture = Image.new("RGB", (40, 20), (0, 0, 0))
    picture.paste(Image.new("RGB", (20, 20), COLOURS[colour]), (0, 0))
    exif = picture.getexif()
    exif[0x0112] = 6
    picture.save(folder / f"{index}.jpg", exif=exif, quality=95)


GREY_16 = {"red": 60, "green": 120, "blue": 200}  # 8-bit grey level of each class's 16-bit image


def sixteen_bit(folder: Path, colour: str, index: int) -> None:
    pixels = np.full((16, 16), GREY_16[colour] * 256, dtype=np.uint16)
    Image.fromarray(pixels).save(folder / f"{index}.png")  # mode I;16


def read_only(env: Env) -> dict:
    """tmp/out exists but can't be written. Simulated: as root, chmod doesn't stop writes."""
    out = env.tmp / "out"
    out.mkdir()
    real = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path).absolute() == out and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    env.monkeypatch.setattr(os, "access", access)
    return {}


def disk_full(env: Env) -> dict:
    real = shutil.disk_usage

    def usage(path):
        if str(Path(path).absolute()).startswith(str(env.tmp)):
            return real(path)._replace(free=1_000_000)
        return real(path)

    env.monkeypatch.setattr(shutil, "disk_usage", usage)
    return {}


def bomb(root: Path) -> None:
    """Images over PIL's pixel limit (lowered for the test): one in the range where PIL only warns, one
    where it raises DecompressionBombError."""
    image("red", (40, 40)).save(root / "red" / "warned.png")  # 1600 px: over 1000, under 2000
    image("red", (50, 50)).save(root / "red" / "refused.png")  # 2500 px


def timm_mismatch(env: Env) -> dict:
    timm = pytest.importorskip("timm")
    wrong = env.tmp / "wrong.pth"
    torch.save(timm.create_model("test_vit", pretrained=False).state_dict(), wrong)
    return {"task": "image-classification", "model": "test_efficientnet", "weights": str(wrong)}


def gpt2_weights_in_bert_dir(env: Env) -> dict:
    from transformers import GPT2Config, GPT2Model

    folder = env.bert_copy("swapped")
    config = GPT2Config(vocab_size=30522, n_embd=32, n_layer=2, n_head=2, n_positions=64)
    GPT2Model(config).save_pretrained(env.tmp / "gpt2")
    shutil.copy(env.tmp / "gpt2" / "model.safetensors", folder / "model.safetensors")
    return {"model": str(folder)}


def config_disagrees(env: Env) -> dict:
    folder = env.bert_copy("edited")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "intermediate_size": 128}))
    return {"model": str(folder)}


def truncated_weights(env: Env) -> dict:
    folder = env.bert_copy("cut")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    return {"model": str(folder)}


def hub(status: str, token: str | None):
    def make(env: Env) -> dict:
        env.monkeypatch.setattr("hftl.hub.publish.hub_status", lambda: status)
        env.monkeypatch.setattr("hftl.hub.publish.get_token", lambda: token)
        env.monkeypatch.delenv("HF_TOKEN", raising=False)
        return {"push_to_hub": True, "hub_model_id": "me/x"}

    return make


# --- checks on handled cases ------------------------------------------------------------------------


def split_sizes(seen, **expected):
    for name, size in expected.items():
        assert len(seen["processed"][name]) == size, name


def splits_total(expected: int):
    def check(seen, log):
        splits = seen["processed"]
        # too few rows to hold a validation split out: it is the training rows (the same count; a carved one
        # holds 10 %), counted once
        same = len(splits["validation"]) == len(splits["train"])
        assert sum(len(split) for name, split in splits.items() if not (name == "validation" and same)) == expected

    return check


def eval_pixels(seen) -> list[tuple[str, torch.Tensor]]:
    """(class name, pixel tensor) of every validation and test row, through the eval transform."""
    rows = []
    for name in ("validation", "test"):
        split = seen["processed"][name]
        names = split.features["labels"].names
        rows += [(names[row["labels"]], row["pixel_values"]) for row in split]
    return rows


def colours_kept(seen, log):
    for colour, pixels in eval_pixels(seen):
        assert pixels.shape == (3, 32, 32)
        assert int(pixels.mean(dim=(1, 2)).argmax()) == list(COLOURS).index(colour), colour


def grey_levels_kept(seen, log):
    for colour, pixels in eval_pixels(seen):
        expected = (GREY_16[colour] / 255 - 0.5) / 0.5  # the processor's mean/std of 0.5
        assert pixels.shape == (3, 32, 32)
        assert abs(float(pixels.mean()) - expected) < 0.05, (colour, float(pixels.mean()))


def upright(seen, log):
    for _, pixels in eval_pixels(seen):
        brightness = pixels.mean(dim=0)  # rotated on display: the coloured half is on top
        assert brightness[:14].mean() > brightness[18:].mean() + 0.5
        assert abs(float(brightness[:, :14].mean() - brightness[:, 18:].mean())) < 0.1


def head_only_reinitialised(seen, log):
    from safetensors.torch import load_file

    model = seen["model"]
    assert model.classifier.weight.shape == (2, 32)
    saved = load_file(str(Path(model.config._name_or_path) / "model.safetensors"))
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(model.state_dict()[name], saved[name])  # the backbone loaded as it was


def duplicates_counted(seen, log):
    assert "3 of 6 test rows" in log





def image_csv(env: Env) -> str:
    """A CSV of the image folder's files plus a text file."""
    root = env.tmp / "photos"
    (root / "red" / "notes.txt").write_text("hello")
    files = [*sorted(root.rglob("*.png")), root / "red" / "notes.txt"]
    table = root / "labels.csv"
    table.write_text(
        "path,label\n" + "".join(f"{f.relative_to(root).as_posix()},{f.parent.name}\n" for f in files)
    )
    return str(table)


def lowered_pixel_limit(env: Env, options: dict) -> dict:
    env.monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    return options


def finished_run(env: Env) -> dict:
    out = env.tmp / "out"
    out.mkdir()
    (out / "all_results.json").write_text('{"test_accuracy": 0.9}')
    return {}


# --- the tests --------------------------------------------------------------------------------------

