"""Bad-input cases: see test_bad_inputs.py, which runs them.

Data files and images: files of the wrong format or encoding, JSON that is not records, headers and
label strings that read as something else than they say, texts that are blank or huge, and images that
decode but fail later (malformed EXIF), cost a lot (extreme strips) or are not what they seem.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import zlib
from pathlib import Path

from PIL import Image

from hftl import DataError, DatasetNotFoundError

from ..conftest import make_rows
from ._battery import (
    COLOURS,
    Case,
    Env,
    colours_kept,
    eval_pixels,
    image,
    image_folder,
    images,
    rows_csv,
    splits_total,
    topics,
    vit,
)


def lines(rows: list[dict], separator: str = ",") -> str:
    return "".join(f"{row['text']}{separator}{row['label']}\n" for row in rows)


def parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({key: [row[key] for row in rows] for key in rows[0]}), buffer)
    return buffer.getvalue()


def duplicate_label_parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = make_rows(30)
    columns = [[r["text"] for r in rows], [r["label"] for r in rows], ["other"] * 30]
    buffer = io.BytesIO()
    pq.write_table(
        pa.Table.from_arrays([pa.array(c) for c in columns], names=["text", "label", "label"]), buffer
    )
    return buffer.getvalue()


def excel_bytes() -> bytes:
    """A zip archive as an .xlsx workbook starts (its first member is [Content_Types].xml)."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    return buffer.getvalue()


def labels_are(*names: str):
    def check(seen, log):
        for split in seen["processed"].values():
            assert split.features["labels"].names == list(names)

    return check


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def malformed_exif(folder: Path, colour: str, index: int) -> None:
    """The first JPEG of the red class carries an EXIF block (orientation 6 and a Make tag stored as a
    fraction) on which PIL's exif_transpose, which datasets applies on every read, raises."""
    picture = image(colour, (20, 20))
    if colour == "red" and index == 0:
        entries = [(0x010F, 5, 1, struct.pack("<I", 38)), (0x0112, 3, 1, struct.pack("<HH", 6, 0))]
        ifd = struct.pack("<H", 2) + b"".join(struct.pack("<HHI", *e[:3]) + e[3] for e in entries) + b"\0" * 4
        exif = b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<II", 1, 2)
        picture.save(folder / f"{index}.jpg", exif=exif)
    else:
        picture.save(folder / f"{index}.png")


def strip(root: Path) -> None:
    Image.new("RGB", (1, 12000), COLOURS["red"]).save(root / "red" / "strip.png")  # 12 kB


RESIZE_INPUTS: list[tuple[int, int]] = []  # sizes of what to_rgb hands the resize, in the running case


def strip_watched(env: Env) -> dict:
    """The strip case, recording the size of every image ``to_rgb`` passes on to the transforms."""
    from hftl.tasks import image_classification

    real = image_classification.to_rgb
    RESIZE_INPUTS.clear()

    def recorded(picture):
        out = real(picture)
        RESIZE_INPUTS.append(out.size)
        return out

    env.monkeypatch.setattr(image_classification, "to_rgb", recorded)
    return images(env, strip)


def animated(folder: Path, colour: str, index: int) -> None:
    """Three frames: the class colour first, then the two other colours."""
    others = [name for name in COLOURS if name != colour]
    frames = [image(name) for name in (colour, *others)]
    frames[0].save(folder / f"{index}.gif", save_all=True, append_images=frames[1:], duration=100)


def zero_by_zero_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def metadata_without_file_name(env: Env) -> dict:
    root = env.tmp / "photos" / "train"
    root.mkdir(parents=True)
    for index in range(12):
        image(list(COLOURS)[index % 3]).save(root / f"{index}.png")
    (root / "metadata.csv").write_text(
        "name,label\n" + "".join(f"{index}.png,{list(COLOURS)[index % 3]}\n" for index in range(12))
    )
    return {**vit(env), "dataset": str(env.tmp / "photos")}


def symlink_outside(root: Path) -> None:
    outside = root.parent / "elsewhere"
    outside.mkdir()
    image("blue").save(outside / "shared.png")
    os.symlink(outside / "shared.png", root / "blue" / "linked.png")


def linked_image_kept(seen, log):
    splits_total(19)(seen, log)
    colours_kept(seen, log)


def strip_processed(seen, log):
    splits_total(19)(seen, log)
    RESIZE_INPUTS.clear()
    for name in ("train", "validation", "test"):
        for row in seen["processed"][name]:
            assert row["pixel_values"].shape == (3, 32, 32)
    rows = sum(len(seen["processed"][name]) for name in ("train", "validation", "test"))  # the rows iterated
    assert len(RESIZE_INPUTS) == rows and (1, 10) in RESIZE_INPUTS  # the strip reached the resize as 1x10
    assert all(max(size) <= 10 * min(size) for size in RESIZE_INPUTS)


def first_frames(seen, log):
    assert len(eval_pixels(seen)) > 0
    colours_kept(seen, log)


DATA_CASES: list[Case] = [
    # parquet
    Case(
        "parquet-empty-file", "a 0-byte .parquet", "Refused, naming the file.",
        lambda env: {"dataset": env.csv("d.parquet", b"")},
        DatasetNotFoundError, "d.parquet is empty (0 bytes); re-export it",
    ),
    Case(
        "parquet-not-parquet", "a CSV saved under a .parquet name", "Refused: no parquet magic bytes.",
        lambda env: {"dataset": env.csv("d.parquet", rows_csv(make_rows(30)))},
        DatasetNotFoundError, "d.parquet is not a parquet file (no PAR1 magic bytes); re-export it",
    ),
    Case(
        "parquet-truncated", "a parquet file cut short", "Refused: its closing bytes are missing.",
        lambda env: {"dataset": env.csv("d.parquet", parquet_bytes(make_rows(30))[:200])},
        DatasetNotFoundError, "d.parquet is cut short or damaged (parquet's closing PAR1 bytes are missing)",
    ),
    Case(
        "parquet-duplicate-column", "a parquet schema naming 'label' twice", "Refused, naming the column.",
        lambda env: {"dataset": env.csv("d.parquet", duplicate_label_parquet())},
        DataError, "d.parquet names column(s) 'label' more than once; give every column its own name.",
    ),
    # CSV
    Case(
        "csv-utf16", "a UTF-16 CSV (Excel's Unicode text)", "Refused with an iconv command from UTF-16.",
        lambda env: {"dataset": env.csv("u.csv", rows_csv(make_rows(30)).encode("utf-16"))},
        DatasetNotFoundError, "u.csv is UTF-16 text; re-save it as UTF-8, e.g. iconv -f utf-16 -t utf-8 u.csv",
    ),
    Case(
        "csv-utf16-no-bom", "a UTF-16 CSV without a byte-order mark", "Refused with an iconv command from UTF-16LE.",
        lambda env: {"dataset": env.csv("u.csv", rows_csv(make_rows(30)).encode("utf-16-le"))},
        DatasetNotFoundError, "u.csv is UTF-16LE text; re-save it as UTF-8, e.g. iconv -f utf-16le",
    ),
    Case(
        "csv-windows-1252", "a Windows-1252 CSV with curly quotes", "Refused with an iconv command from cp1252.",
        lambda env: {"dataset": env.csv("w.csv", ("text,label\n" + "".join(f"it\u2019s {r['text']},{r['label']}\n" for r in make_rows(30))).encode("cp1252"))},
        DatasetNotFoundError, "w.csv is not UTF-8 text (line 2 has byte 0x92); re-save it as UTF-8, e.g. iconv -f cp1252",
    ),
    Case(
        "csv-binary", "binary bytes under a .csv name", "Refused: NUL bytes, not text.",
        lambda env: {"dataset": env.csv("b.csv", bytes(range(256)) * 8)},
        DatasetNotFoundError, "b.csv is binary (10 % control bytes in its first 2048 bytes), not CSV text",
    ),
    Case(
        "csv-excel-workbook", "an Excel workbook renamed .csv", "Refused: export the sheet as CSV.",
        lambda env: {"dataset": env.csv("x.csv", excel_bytes())},
        DatasetNotFoundError, "x.csv is a zip archive (an Excel workbook?), not CSV text; export the sheet as CSV UTF-8.",
    ),
    Case(
        "csv-gzip-compressed", "a gzip-compressed CSV named .csv", "Refused: decompress it first.",
        lambda env: {"dataset": env.csv("g.csv", gzip.compress(rows_csv(make_rows(30)).encode()))},
        DatasetNotFoundError, "g.csv is gzip-compressed, not CSV text; decompress it first (gunzip).",
    ),
    Case(
        "csv-stray-nul-byte", "a CSV text holding one NUL byte", "Read as text, as pandas reads it.",
        lambda env: {"dataset": env.csv("n.csv", rows_csv([{**r, "text": r["text"] + (" a\0b" if i == 3 else "")} for i, r in enumerate(make_rows(30))]))},
        check=labels_are("politics", "sport", "tech"),
    ),
    Case(
        "csv-utf8-bom", "a UTF-8 CSV starting with a byte-order mark", "Read as UTF-8: the mark is not part of the first column name.",
        lambda env: {"dataset": env.csv("bom.csv", "\ufeff" + rows_csv(make_rows(30)))},
        check=labels_are("politics", "sport", "tech"),
    ),
    Case(
        "csv-header-spaces", "a header 'text, label' (space after the comma)", "Column names stripped, logged.",
        lambda env: {"dataset": env.csv("s.csv", "text, label\n" + lines(make_rows(30)))},
        message="stripped spaces around column name(s) ' label' -> 'label'", check=labels_are("politics", "sport", "tech"),
    ),
    Case(
        "csv-duplicate-column", "a header naming 'label' twice", "Refused, naming the column: the run uses it.",
        lambda env: {"dataset": env.csv("d.csv", "text,label,label\n" + "".join(f"{r['text']},{r['label']},x\n" for r in make_rows(30)))},
        DataError, "The header of d.csv names column 'label' more than once, and the run uses it as its label column (read as 'label', 'label.1'); give every column its own name.",
    ),
    Case(
        "csv-duplicate-unused-column", "a header naming an unused column 'notes' twice", "Read, as pandas reads it; one log line names the column.",
        lambda env: {"dataset": env.csv("d.csv", "text,label,notes,notes\n" + "".join(f"{r['text']},{r['label']},a,b\n" for r in make_rows(30)))},
        message="the header names column(s) 'notes' in d.csv (read as notes, notes.1) more than once; the run doesn't use them",
        check=labels_are("politics", "sport", "tech"),
    ),
    Case(
        "csv-semicolons", "a .csv separated by semicolons", "Refused: the fields look ';'-separated.",
        lambda env: {"dataset": env.csv("e.csv", "text;label\n" + lines(make_rows(30), ";"))},
        DatasetNotFoundError, "reads as a single column 'text;label': its fields look ';'-separated",
    ),
    Case(
        "csv-class-named-na", "classes named None, NA, null and nan", "Kept as class names; only an empty field is missing.",
        lambda env: {"dataset": env.csv("n.csv", rows_csv(topics(40, label_of=lambda i, r: ["None", "NA", "null", "nan"][i % 4])))},
        message="labels (4, one per example): NA, None, nan, null", check=labels_are("NA", "None", "nan", "null"),
    ),
    Case(
        "csv-numeric-labels-r-na", "0/1 labels with R's NA in 20 rows", "Refused like empty labels, with the count: NA among numbers is a missing value.",
        lambda env: {"dataset": env.csv("r.csv", rows_csv(topics(80, label_of=lambda i, r: i % 2 if i < 60 else "NA")))},
        DataError, "20 training rows have no label ('NA' in label column 'label' marks a missing value, as its other labels are numbers); drop or label them.",
    ),
    Case(
        "csv-word-labels-and-none", "classes positive, negative and one named None", "Kept as a class name, counted in a log line.",
        lambda env: {"dataset": env.csv("n.csv", rows_csv(topics(30, label_of=lambda i, r: ["positive", "negative", "None"][i % 3])))},
        message="10 row(s) labelled with a word pandas reads as missing ('None' 10) are kept as a class of that name",
        check=labels_are("None", "negative", "positive"),
    ),
    Case(
        "csv-blank-text", "a text of spaces only", "Refused like an empty text, with the count.",
        lambda env: {"dataset": env.csv("b.csv", rows_csv(make_rows(30)) + "   ,sport\n")},
        DataError, "1 rows of the train split have no text in column 'text'; drop or fill them.",
    ),
    Case(
        "csv-no-header", "a CSV whose first line is already data", "Refused: add a header line.",
        lambda env: {"dataset": env.csv("n.csv", lines([{**r, "text": f"{r['text']} number {i}"} for i, r in enumerate(make_rows(30))]))},
        DataError, "Pass --label_column NAME. The first line reads as data, not names: add a header line, e.g. text,label.",
    ),
    # TSV
    Case(
        "tsv-header-only", "a .tsv with a header and no rows", "Refused, naming the file.",
        lambda env: {"dataset": env.csv("h.tsv", "text\tlabel\n\n")},
        DataError, "h.tsv has no rows; add examples to it",
    ),
    Case(
        "tsv-ragged-row", "a .tsv row with an extra tab", "Refused with the line.",
        lambda env: {"dataset": env.csv("r.tsv", "text\tlabel\n" + lines(make_rows(10), "\t") + "a\tb\tsport\n" + lines(make_rows(20, seed=1), "\t"))},
        DatasetNotFoundError, "line 12 has 3 fields but the header has 2",
    ),
    Case(
        "tsv-with-commas", "a .tsv separated by commas", "Refused: the fields look ','-separated.",
        lambda env: {"dataset": env.csv("c.tsv", rows_csv(make_rows(30)))},
        DatasetNotFoundError, "reads as a single column 'text,label': its fields look ','-separated, but a .tsv file is read with tabs",
    ),
    # JSON and JSON lines
    Case(
        "json-object-of-records", 'a .json of one object {"data": [records]}', "Refused: write a list of records or JSON lines.",
        lambda env: {"dataset": env.csv("o.json", json.dumps({"data": make_rows(30)}))},
        DatasetNotFoundError, "o.json is one JSON object whose key 'data' holds the data, not a list of records",
    ),
    Case(
        "json-columns", 'a .json of columns {"text": [...], "label": [...]}', "Refused: write a list of records or JSON lines.",
        lambda env: {"dataset": env.csv("c.json", json.dumps({key: [r[key] for r in make_rows(30)] for key in ("text", "label")}))},
        DatasetNotFoundError, "c.json is one JSON object of columns (lists), not a list of records",
    ),
    Case(
        "json-list-of-strings", "a .json list of strings, not objects", "Refused: write a list of records or JSON lines.",
        lambda env: {"dataset": env.csv("s.json", json.dumps([r["text"] for r in make_rows(30)]))},
        DatasetNotFoundError, "s.json is a list holding str values, not records (objects)",
    ),
    Case(
        "json-empty-list", "a .json holding []", "Refused, naming the file.",
        lambda env: {"dataset": env.csv("e.json", "[]\n")},
        DataError, "e.json has no rows",
    ),
    Case(
        "jsonl-bad-line", "a .jsonl with one broken line", "Refused with the line number.",
        lambda env: {"dataset": env.csv("b.jsonl", jsonl(make_rows(10)) + '{"text": oops, "label": "sport"}\n' + jsonl(make_rows(5)))},
        DatasetNotFoundError, "b.jsonl: line 11 is not valid JSON (Expecting value at column 10); fix or remove that line.",
    ),
    Case(
        "jsonl-arrays", "a .jsonl whose lines are arrays, not objects", "Refused naming the line: write one record a line.",
        lambda env: {"dataset": env.csv("a.jsonl", "".join(f'["{r["text"]}", "{r["label"]}"]\n' for r in make_rows(12)))},
        DatasetNotFoundError, "a.jsonl is JSON lines whose line 1 holds a list, not a record (object)",
    ),
    Case(
        "jsonl-invisible-text", "a .jsonl text of zero-width spaces only", "Refused like an empty text, with the count.",
        lambda env: {"dataset": env.csv("z.jsonl", jsonl(make_rows(30)) + jsonl([{"text": "\u200b \u200b", "label": "tech"}]))},
        DataError, "1 rows of the train split have no text in column 'text'; drop or fill them.",
    ),
    Case(
        "jsonl-zero-width-label", "labels with a zero-width space or trailing space (.jsonl)", "Stripped in every split, counted in a log line.",
        lambda env: {"dataset": env.csv("z.jsonl", jsonl(topics(30, label_of=lambda i, r: r["label"] + ["", "\u200b", " "][i % 3])))},
        message="stripped whitespace and zero-width characters from 20 label(s) (train 20)", check=labels_are("politics", "sport", "tech"),
    ),
    # labels and texts
    Case(
        "labels-look-alike", "classes pos, Pos and a full-width ｐｏｓ", "Refused, naming the classes that are one text in two Unicode encodings.",
        lambda env: {"dataset": env.csv("l.csv", rows_csv(topics(40, label_of=lambda i, r: ["pos", "Pos", "ｐｏｓ", "neg"][i % 4])))},
        DataError, "has classes that are the same text in two Unicode encodings ('Pos' / 'pos' / 'ｐｏｓ': full-width",
    ),
    Case(
        "labels-case-only", "classes C#, c#, CO and Co (music keys, chemistry)", "Kept as separate classes, the case-only pairs named with their counts in a log line.",
        lambda env: {"dataset": env.csv("k.csv", rows_csv(topics(40, label_of=lambda i, r: ["C#", "c#", "CO", "Co"][i % 4])))},
        message="2 group(s) of classes differ only in case and train as separate classes ('C#' 10 / 'c#' 10; 'CO' 10 / 'Co' 10)",
        check=labels_are("C#", "CO", "Co", "c#"),
    ),
    Case(
        "text-huge-cell", "one 1,000,000-character cell", "Cut to max_length x 64 characters before tokenising, counted in a log line.",
        lambda env: {"dataset": env.csv("h.csv", rows_csv([{"text": "goal " * 200_000, "label": "sport"}, *make_rows(29)]))},
        message="cut 1 text(s) longer than 4096 characters (max_length=64 tokens x 64) to that length before tokenising",
    ),
    # image folders and image files
    Case(
        "imagefolder-metadata-without-file-name", "an image folder's metadata.csv with no file_name column", "Refused: rename the column to file_name.",
        metadata_without_file_name,
        DatasetNotFoundError, "metadata.csv has no file_name column, which names the image each row describes",
    ),
    Case(
        "image-malformed-exif", "a JPEG whose EXIF block makes PIL's exif_transpose raise", "Skipped and listed in pre-flight, not mid-training.",
        lambda env: {**vit(env), "dataset": str(image_folder(env, n=19, save=malformed_exif))},
        message="0.jpg (malformed EXIF block)", check=splits_total(18),
    ),
    Case(
        "image-extreme-aspect", "a 1x12000-pixel strip (12 kB)", "Cut to its central 10:1 part before resizing, counted in a log line.",
        strip_watched,
        message="1 image(s) of 19 in the train split are longer than 10:1 (strip.png 1x12000)", check=strip_processed,
    ),
    Case(
        "image-animated-gif", "animated GIFs whose later frames show other classes", "The first frame is used, counted in a log line.",
        lambda env: {**vit(env), "dataset": str(image_folder(env, save=animated))},
        message="18 image(s) of 18 in the train split have several frames", check=first_frames,
    ),
    Case(
        "image-one-pixel", "1x1-pixel images", "Upscaled to the model's size, colours kept.",
        lambda env: {**vit(env), "dataset": str(image_folder(env, save=lambda f, c, i: image(c, (1, 1)).save(f / f"{i}.png")))},
        check=colours_kept,
    ),
    Case(
        "image-zero-size", "a PNG declaring 0x0 pixels", "Skipped and listed.",
        lambda env: images(env, lambda root: (root / "red" / "zero.png").write_bytes(zero_by_zero_png())),
        message="zero.png (UnidentifiedImageError)", check=splits_total(18),
    ),
    Case(
        "image-symlink-outside", "an image symlinked from outside the dataset folder", "Followed like any file: the folder is the user's own.",
        lambda env: images(env, symlink_outside),
        check=linked_image_kept,
    ),
]  # fmt: skip
