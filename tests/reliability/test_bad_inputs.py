"""Bad inputs (issue 6, item 5): each case writes its fixture into ``tmp_path`` and runs ``finetune()``.

A *refused* case fails in pre-flight, before any model is built, with one line from hftl (what is wrong,
how to fix it) and no chained traceback from torch/PIL/pandas. A *handled* case goes on to the model
build (where the test stops it: no training) after logging what hftl did about it. In every case the
files the user passed are left exactly as they were.

Every case also runs with a secret in ``HF_TOKEN`` and the working directory inside ``tmp_path``: the
error line is at most 300 characters, and the token appears in no line and no file written.

``CASES`` (this file's table plus the ``_cases_*.py`` tables, one per class of input) is the source of the
"Bad inputs" table in docs/reliability.md: keep the two in sync.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
import torch
from transformers import ViTConfig, ViTModel

from hftl import ConfigError, DataError, DatasetNotFoundError, ModelNotFoundError, finetune
from hftl.methods import method_names
from hftl.tasks._base import Task
from hftl.tasks.image_classification import ImageClassification
from hftl.tasks.text_classification import TextClassification

from ..conftest import make_rows
from ._battery import (
    Case,
    Env,
    bomb,
    class_label_parquet,
    classifier_dir,
    colours_kept,
    config_disagrees,
    disk_full,
    duplicates_counted,
    exif_rotated,
    finished_run,
    gpt2_weights_in_bert_dir,
    grey_levels_kept,
    head_only_reinitialised,
    hub,
    image,
    image_csv,
    image_folder,
    images,
    jpeg_bytes,
    lowered_pixel_limit,
    read_only,
    rows_csv,
    sixteen_bit,
    split_folder,
    split_sizes,
    splits_total,
    timm_mismatch,
    tokenizer_without,
    topics,
    truncated_weights,
    upright,
    vit,
)
from ._cases_data import DATA_CASES
from ._cases_models import MODEL_CASES
from ._cases_options import OPTION_CASES
from ._cases_output import OUTPUT_CASES

# --- the cases --------------------------------------------------------------------------------------

CASES = [
    # columns
    Case(
        "label-column-misnamed", "--label_column names no column", "Refused, listing the columns.",
        lambda env: {"label_column": "stars"},
        DataError, "Label column 'stars' not found; columns are: text, label. Fix --label_column.",
    ),
    Case(
        "label-column-absent", "no column looks like a label", "Refused: pass --label_column.",
        lambda env: {"dataset": env.csv("d.csv", rows_csv([{"body": r["text"], "score": r["label"]} for r in make_rows(12)], ("body", "score")))},
        DataError, "No label column found; columns are: body, score. Pass --label_column NAME.",
    ),
    Case(
        "label-column-ambiguous", "two columns look like labels", "Refused: pass --label_column.",
        lambda env: {"dataset": env.csv("d.csv", rows_csv([{**r, "category": r["label"]} for r in make_rows(12)], ("text", "label", "category")))},
        DataError, "Several columns could be the label (label, category); pass --label_column NAME.",
    ),
    Case(
        "text-column-misnamed", "--text_column names no column", "Refused, listing the columns.",
        lambda env: {"text_column": "review"},
        DataError, "Text column 'review' not found; columns are: text, label. Fix --text_column.",
    ),
    Case(
        "text-column-absent", "no column holds text", "Refused: pass --text_column.",
        lambda env: {"dataset": env.csv("d.csv", rows_csv([{"id": i, "label": r["label"]} for i, r in enumerate(make_rows(12))], ("id", "label")))},
        DataError, "No text column found; columns are: id, label. Pass --text_column NAME",
    ),
    Case(
        "text-column-ambiguous", "two columns look like text", "Refused: pass --text_column.",
        lambda env: {"dataset": env.csv("d.csv", rows_csv([{**r, "content": r["text"]} for r in make_rows(12)], ("text", "content", "label")))},
        DataError, "Several columns could be the text (text, content); pass --text_column NAME",
    ),
    Case(
        "text-missing", "a row with no text", "Refused with the count of empty rows.",
        lambda env: {"dataset": env.csv("d.csv", "text,label\na,x\n,y\nc,y\nd,x\n")},
        DataError, "1 rows of the train split have no text in column 'text'; drop or fill them.",
    ),
    # labels
    Case(
        "labels-out-of-range", "integer label in test (7) that train (0-2) lacks", "Refused: the model could never predict it.",
        lambda env: {"dataset": split_folder(env, topics(label_of=lambda i, r: i % 3), test=topics(6, label_of=lambda i, r: 7 if i == 0 else i % 3))},
        DataError, "The test split has labels the train split lacks (7)",
    ),
    Case(
        "labels-class-id-out-of-range", "ClassLabel id beyond its names (parquet)", "Refused with the count and the class names.",
        lambda env: {"dataset": class_label_parquet(env, 7)},
        DataError, "1 rows of the train split have label ids 7 beyond the 3 class names of label column 'label' (politics, sport, tech)",
    ),
    Case(
        "labels-negative-no-label", "ClassLabel -1 ('no label') in train", "Refused with the count: drop or label those rows.",
        lambda env: {"dataset": class_label_parquet(env, -1)},
        DataError, "1 rows of the train split have label -1 (no label) in label column 'label'; drop or label them.",
    ),
    Case(
        "labels-negative-classes", "plain integer labels -1, 0, 1", "Each value is a class (e.g. sentiment -1/0/1), logged.",
        lambda env: {"dataset": env.csv("d.csv", rows_csv(topics(label_of=lambda i, r: i % 3 - 1)))},
        message="labels (3, one per example): -1, 0, 1",
    ),
    Case(
        "labels-unlabelled-test", "a test split labelled all -1 (GLUE-style)", "A labelled test split is carved from train instead, logged.",
        lambda env: {"dataset": split_folder(env, topics(40, label_of=lambda i, r: i % 2), test=[{"text": f"t{i}", "label": -1} for i in range(10)])},
        message="the test split has no labels (all missing or -1): carving a labelled one from train instead",
        check=lambda seen, log: split_sizes(seen, test=4),
    ),
    Case(
        "labels-nan-train", "a training row with no label (NaN)", "Refused with the count.",
        lambda env: {"dataset": env.csv("d.csv", rows_csv(topics(label_of=lambda i, r: "" if i == 5 else i % 3)))},
        DataError, "1 training rows have no value in label column 'label'; drop or fill them.",
    ),
    Case(
        "labels-nan-eval", "a test row with no label", "Refused with the count.",
        lambda env: {"dataset": split_folder(env, make_rows(30), test=rows_csv(topics(6, label_of=lambda i, r: "" if i == 0 else r["label"])))},
        DataError, "1 rows of the test split have no value in label column 'label'; drop or fill them.",
    ),
    Case(
        "labels-only-in-eval", "a validation label train lacks", "Refused: the model could never predict it.",
        lambda env: {"dataset": split_folder(env, make_rows(30), validation=[{"text": "sunny", "label": "weather"}])},
        DataError, "The validation split has labels the train split lacks ('weather')",
    ),
    Case(
        "labels-fractional", "float labels 0.5, 1.25 (regression targets)", "Refused: hftl trains classifiers.",
        lambda env: {"dataset": env.csv("d.csv", rows_csv(topics(12, label_of=lambda i, r: [0.5, 1.25][i % 2])))},
        DataError, "Label column 'label' holds fractional numbers (e.g. 0.5), which looks like regression",
    ),
    Case(
        "labels-whole-floats", "float labels 0.0, 1.0, 2.0", "Read as classes 0, 1, 2, logged.",
        lambda env: {"dataset": env.csv("d.csv", rows_csv(topics(label_of=lambda i, r: float(i % 3))))},
        message="labels (3, one per example): 0, 1, 2",
    ),
    Case(
        "one-class", "one class in the training set", "Refused: a classifier needs 2 classes.",
        lambda env: {"dataset": env.csv("d.csv", rows_csv(topics(10, label_of=lambda i, r: "only")))},
        DataError, "Label column 'label' has only 1 distinct value in train; a classifier needs at least 2 classes.",
    ),
    # splits and files
    Case(
        "empty-split-file", "a header-only validation file", "Refused, naming the file.",
        lambda env: {"dataset": split_folder(env, make_rows(30), validation="text,label\n")},
        DataError, "validation.csv has no rows; add examples to it, or remove it so hftl carves one from train.",
    ),
    Case(
        "empty-split-after-filtering", "--label_fraction leaving no labelled rows", "Refused, naming the option.",
        lambda env: {"label_fraction": 0.01},
        DataError, "Carving 99% of the 48 training rows off as the unlabelled split leaves one side empty; change --label_fraction",
    ),
    Case(
        "too-few-rows", "2 rows in all", "Refused: too few to carve a test split.",
        lambda env: {"dataset": env.csv("d.csv", "text,label\na,x\nb,y\n")},
        DataError, "The train split has 2 rows, too few to carve a test split from",
    ),
    Case(
        "empty-file", "a 0-byte CSV", "Refused, naming the file.",
        lambda env: {"dataset": env.csv("empty.csv", "")},
        DataError, "empty.csv has no rows",
    ),
    Case(
        "csv-not-utf8", "a Latin-1 CSV", "Refused with the line and byte, and an iconv command.",
        lambda env: {"dataset": env.csv("latin1.csv", ("text,label\n" + "".join(f"café {r['text']},{r['label']}\n" for r in make_rows(30))).encode("latin-1"))},
        DatasetNotFoundError, "latin1.csv is not UTF-8 text (line 2 has byte 0xe9); re-save it as UTF-8, e.g. iconv -f latin1 -t utf-8",
    ),
    Case(
        "csv-ragged-long-row", "a CSV row with an extra field", "Refused with the line: quote the delimiter.",
        lambda env: {"dataset": env.csv("ragged.csv", rows_csv(make_rows(10)) + "a, b,sport\n" + rows_csv(make_rows(20, seed=1))[len("text,label\n"):])},
        DatasetNotFoundError, "line 12 has 3 fields but the header has 2; quote values that contain the delimiter",
    ),
    Case(
        "csv-ragged-short-row", "a CSV row missing its label field", "Refused as a row with no label.",
        lambda env: {"dataset": env.csv("short.csv", rows_csv(make_rows(10)) + "lonely\n" + rows_csv(make_rows(20, seed=1))[len("text,label\n"):])},
        DataError, "1 training rows have no value in label column 'label'",
    ),
    Case(
        "duplicates-across-splits", "test rows that repeat training texts", "Warns with the count of repeated rows.",
        lambda env: {"dataset": split_folder(env, make_rows(30), test=make_rows(3, seed=5) + make_rows(3))},
        message="warning: 3 of 6 test rows have the same text as a training row",
        check=duplicates_counted,
    ),
    Case(
        "huge-text", "one 20,000-word text", "Truncated to max_length; the truncated texts are counted in a log line.",
        lambda env: {"dataset": env.csv("huge.csv", rows_csv([{"text": " ".join(["goal team match"] * 7000), "label": "sport"}, *make_rows(29)]))},
        message="truncated 1 of 30 texts longer than max_length=64 tokens",
    ),
    # model and tokenizer
    Case(
        "tokenizer-without-pad", "a tokenizer with no pad token (GPT-style)", "Pads with its eos token, logged.",
        lambda env: tokenizer_without(env, {"eos_token": "[SEP]"}),
        message="the tokenizer has no pad token: padding with its eos token '[SEP]'",
    ),
    Case(
        "tokenizer-without-pad-or-eos", "a tokenizer with no pad or eos token", "Pads with its unk token, logged.",
        lambda env: tokenizer_without(env, {"unk_token": "[UNK]"}),
        message="the tokenizer has no pad token: padding with its unk token '[UNK]'",
    ),
    Case(
        "tokenizer-without-special-tokens", "a tokenizer with no pad, eos or unk token", "Refused: set pad_token in tokenizer_config.json.",
        lambda env: tokenizer_without(env, {}),
        ConfigError, "has no pad, eos or unk token, so batches can't be padded; set \"pad_token\" in its tokenizer_config.json",
    ),
    Case(
        "max-length-over-model-limit", "--max_length above the model's limit", "Clipped to the model's maximum, logged.",
        lambda env: {"max_length": 4096},
        message="max_length=64 (the model maximum; 4096 was asked)",
    ),
    Case(
        "head-size-mismatch", "a 3-class checkpoint for 2-class data", "Only the head is re-initialised, logged; the backbone loads.",
        lambda env: {"model": str(classifier_dir(env, "three", ["a", "b", "c"])), "dataset": env.csv("d.csv", rows_csv(topics(label_of=lambda i, r: ["yes", "no"][i % 2])))},
        message="new head (randomly initialised): classifier (the checkpoint's classifier has another number of classes)",
        check=head_only_reinitialised, build=True,
    ),
    Case(
        "backbone-config-mismatch", "config.json that doesn't match its weights", "Refused before loading: the backbone would be re-initialised.",
        config_disagrees,
        ModelNotFoundError, "don't fit its config.json (6 backbone tensors differ, e.g. bert.encoder.layer.0.intermediate.dense.bias: (64,) in the file, (128,) from the config)",
    ),
    Case(
        "backbone-other-architecture", "another architecture's weights in a model folder", "Refused: no tensor belongs to the configured model.",
        gpt2_weights_in_bert_dir,
        ModelNotFoundError, "belongs to a bert model (e.g. h.0.attn.c_attn.bias); the config and weights come from different models",
    ),
    Case(
        "weights-file-truncated", "a truncated model.safetensors", "Refused, naming the file.",
        truncated_weights,
        ModelNotFoundError, "model.safetensors' can't be read",
    ),
    Case(
        "timm-weights-mismatch", "--weights of another timm architecture", "Refused: the file doesn't fit the architecture.",
        timm_mismatch,
        ModelNotFoundError, "does not fit timm's test_efficientnet",
    ),
    # options
    Case(
        "lora-target-matches-nothing", "--lora_target_modules matching no layer", "Refused, listing the layer names.",
        lambda env: {"method": "lora", "lora_target_modules": "q_proj"},
        ConfigError, "LoRA target 'q_proj' matches no layer of this bert model; fix --lora_target_modules (layer names here:",
    ),
    Case(
        "unknown-method", "--method prune", "Refused, listing the methods.",
        lambda env: {"method": "prune"},
        ConfigError, f"Unknown method 'prune'; choose one of: {', '.join(method_names())}.",
    ),
    Case(
        "unknown-task", "--task translation", "Refused, listing the tasks.",
        lambda env: {"task": "translation"},
        ConfigError, "Unknown task 'translation'; choose one of:",
    ),
    Case(
        "distill-label-mismatch", "a teacher trained on other label names", "Refused, naming the labels on each side.",
        lambda env: {"method": "distill", "teacher": str(classifier_dir(env, "teacher", ["politics", "science", "sport"]))},
        DataError, "The teacher's classes don't match the data's: the data has tech that the teacher lacks; the teacher has science",
    ),
    # training techniques (docs/techniques.md)
    Case(
        "class-weights-count-mismatch", "--class_weights with 2 weights for 3 classes", "Refused, listing the labels in weight order.",
        lambda env: {"class_weights": "1,2"},
        ConfigError, "--class_weights has 2 weight(s) but there are 3 labels; give one per label in this order: politics, sport, tech",
    ),
    Case(
        "class-weights-not-numbers", "--class_weights heavy", "Refused: none, auto, effective or one number per label.",
        lambda env: {"class_weights": "heavy"},
        ConfigError, "--class_weights must be none, auto, effective or a comma-separated list of numbers",
    ),
    Case(
        "early-stopping-without-evaluation", "--early_stopping_patience with --eval_strategy no", "Refused: evaluate by epoch or steps.",
        lambda env: {"early_stopping_patience": 2, "eval_strategy": "no"},
        ConfigError, "--early_stopping_patience compares evaluations, so it needs --eval_strategy epoch or steps",
    ),
    Case(
        "best-metric-not-reported", "--metric_for_best_model naming a metric evaluation doesn't report", "Refused before training, listing the metrics.",
        lambda env: {"early_stopping_patience": 2, "eval_strategy": "epoch", "save_strategy": "epoch", "metric_for_best_model": "eval_mse"},
        ConfigError, "--metric_for_best_model eval_mse is not reported by single-label evaluation; use one of loss, accuracy",
    ),
    Case(
        "unfreeze-schedule-with-lora", "--unfreeze_schedule gradual with --method lora", "Refused: schedules are for --method full.",
        lambda env: {"method": "lora", "unfreeze_schedule": "gradual"},
        ConfigError, "--unfreeze_schedule gradual works with --method full only (got lora)",
    ),
    Case(
        "hp-space-misspelt-option", "an --hp_space file with a misspelt option", "Refused before the first trial, suggesting the option meant.",
        lambda env: {"hp_search": "optuna", "n_trials": 2, "hp_space": env.csv("space.yaml", "learnig_rate: {low: 1.0e-5, high: 1.0e-3}\n")},
        ConfigError, "Unknown option 'learnig_rate' in --hp_space",
    ),
    # images
    Case(
        "image-corrupt", "a text file named .png", "Skipped and listed.",
        lambda env: images(env, lambda root: (root / "red" / "notes.png").write_text("not an image")),
        message="skipping 1 unreadable image(s) of 19 in the train split: ", check=splits_total(18),
    ),
    Case(
        "image-truncated", "a JPEG cut in half", "Skipped and listed.",
        lambda env: images(env, lambda root: (root / "blue" / "cut.jpg").write_bytes(jpeg_bytes("blue")[:300])),
        message="cut.jpg (OSError)", check=splits_total(18),
    ),
    Case(
        "image-empty-file", "a 0-byte .png", "Skipped and listed.",
        lambda env: images(env, lambda root: (root / "green" / "empty.png").write_bytes(b"")),
        message="empty.png (UnidentifiedImageError)", check=splits_total(18),
    ),
    Case(
        "image-non-image", "a text file listed in the image CSV", "Skipped and listed.",
        lambda env: {**images(env), "dataset": image_csv(env)},
        message="notes.txt (UnidentifiedImageError)", check=splits_total(18),
    ),
    Case(
        "image-missing-file", "image paths in the CSV that don't exist", "Refused with the count and the base folder.",
        lambda env: {**vit(env), "dataset": env.csv("paths.csv", "path,label\n" + "".join(f"img{i}.png,{i % 2}\n" for i in range(10)))},
        DataError, "10 image paths in the train split don't exist",
    ),
    Case(
        "image-too-many-unreadable", "more unreadable images than --max_bad_image_fraction", "Refused before training, listing them.",
        lambda env: images(env, lambda root: (root / "red" / "notes.png").write_text("x"), max_bad_image_fraction=0.01),
        DataError, "1 of 19 images in the train split can't be read",
    ),
    Case(
        "image-cmyk", "CMYK JPEGs", "Converted to RGB, colours kept.",
        lambda env: {**vit(env), "dataset": str(image_folder(env, save=lambda f, c, i: image(c, mode="CMYK").save(f / f"{i}.jpg")))},
        check=colours_kept,
    ),
    Case(
        "image-16-bit", "16-bit greyscale PNGs", "Scaled to 8 bits, then RGB.",
        lambda env: {**vit(env), "dataset": str(image_folder(env, save=sixteen_bit))},
        check=grey_levels_kept,
    ),
    Case(
        "image-exif-rotated", "JPEGs with an EXIF rotation", "Turned upright before resizing.",
        lambda env: {**vit(env), "dataset": str(image_folder(env, save=exif_rotated))},
        check=upright,
    ),
    Case(
        "image-decompression-bomb", "images over PIL's decompression-bomb pixel limit", "Skipped and listed, where PIL warns as where it refuses.",
        lambda env: lowered_pixel_limit(env, images(env, bomb)),
        message="skipping 2 unreadable image(s) of 20 in the train split", check=splits_total(18),
    ),
    # output and Hub
    Case(
        "output-dir-holds-a-run", "--output_dir holding a finished run", "Refused unless --overwrite_output_dir.",
        lambda env: finished_run(env),
        ConfigError, "already holds a finished run (all_results.json); pass a new --output_dir, or --overwrite_output_dir",
    ),
    Case(
        "output-dir-read-only", "a read-only --output_dir", "Refused before any compute.",
        read_only,
        ConfigError, "out can't be written (it is read-only for this user); pick a writable --output_dir.",
    ),
    Case(
        "output-dir-is-a-file", "--output_dir naming a file", "Refused before any compute.",
        lambda env: {"output_dir": env.csv("results.txt", "notes")},
        ConfigError, "is a file, not a folder",
    ),
    Case(
        "output-disk-full", "too little free space for --output_dir", "Refused: needs about 3x the model's weights.",
        disk_full,
        ConfigError, "Only 1 MB free on the disk of --output_dir",
    ),
    Case(
        "push-without-repo-id", "--push_to_hub without --hub_model_id", "Refused before training.",
        lambda env: {"push_to_hub": True},
        ConfigError, "--push_to_hub needs --hub_model_id USER/NAME",
    ),
    Case(
        "push-bad-repo-id", "--hub_model_id without a user", "Refused before training.",
        lambda env: {"push_to_hub": True, "hub_model_id": "no-slash"},
        ConfigError, "--hub_model_id must look like user/name",
    ),
    Case(
        "push-hub-unreachable", "--push_to_hub with the Hub disabled or unreachable", "Refused before training: add --push_dry_run.",
        lambda env: {"push_to_hub": True, "hub_model_id": "me/x"},
        ConfigError, "--push_to_hub can't publish: the Hub is disabled (HF_HUB_OFFLINE=1). Add --push_dry_run",
    ),
    Case(
        "push-without-token", "--push_to_hub with no Hugging Face token", "Refused before training.",
        hub("reachable", None),
        ConfigError, "--push_to_hub needs a Hugging Face token",
    ),
]  # fmt: skip

CASES += [*OPTION_CASES, *DATA_CASES, *OUTPUT_CASES, *MODEL_CASES]

SECRET = "hf_hftlBatterySecretToken0123456789"


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    from transformers import ViTImageProcessor

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vit")
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    ViTModel(config).save_pretrained(folder)
    ViTImageProcessor(
        size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    ).save_pretrained(folder)
    return str(folder)


def snapshot(*roots: Path, skip: Path | None = None) -> dict:
    """Every file under ``roots`` with its bytes and mtime, and every folder (a file added or removed
    shows as a changed set of paths)."""
    state = {}
    for root in roots:
        for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
            if skip is not None and (path == skip or skip in path.parents):
                continue
            state[str(path)] = (path.stat().st_mtime_ns, path.read_bytes()) if path.is_file() else "folder"
    return state


def given_paths(options: dict) -> list[Path]:
    """The model folder, teacher and weights file the options name (outside tmp_path, e.g. session fixtures)."""
    return [
        Path(value)
        for key in ("model", "teacher", "weights")
        if (value := options.get(key)) and Path(value).exists()
    ]


def run_case(case: Case, tmp_path: Path, request, monkeypatch, defaults: dict):
    env = Env(tmp_path, request, monkeypatch)
    monkeypatch.setenv("HF_TOKEN", SECRET)  # a case may unset it; none may leak it
    workdir = tmp_path / "cwd"  # a relative path written by mistake lands here and shows in the snapshot
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    options = {**defaults, **case.make(env)}
    watched = [tmp_path, *given_paths(options)]
    out = Path(options["output_dir"]) if options.get("output_dir") else tmp_path / "out"
    before = snapshot(*watched, skip=None if case.error else out)
    return options, watched, out, before


def no_secret(*texts: str, roots: list[Path]) -> None:
    """The token is in no message and no file under ``roots``."""
    for text in texts:
        assert SECRET not in text
    for root in roots:
        for path in root.rglob("*") if root.is_dir() else ():
            if path.is_file() and not path.is_symlink():
                assert SECRET.encode() not in path.read_bytes(), path


def cases(refused: bool):
    return [pytest.param(case, id=case.id) for case in CASES if (case.error is not None) == refused]


@pytest.mark.parametrize("case", cases(refused=True))
def test_refused(case, tmp_path, request, monkeypatch, tiny_options, no_model_build):
    options, watched, out, before = run_case(case, tmp_path, request, monkeypatch, tiny_options)
    existed = out.exists()
    with pytest.raises(case.error) as error:
        finetune(**options)
    line = str(error.value)
    assert case.message in line, line
    assert "\n" not in line, line
    short = line.replace(str(tmp_path), "<tmp>")  # the line's length, not the test folder's
    assert len(short) <= 300, f"{len(short)} characters: {line}"
    raised_in = traceback.extract_tb(error.value.__traceback__)[-1].filename
    assert "/hftl/" in raised_in, f"raised from {raised_in}, not by hftl"
    chained = error.value.__cause__ or (None if error.value.__suppress_context__ else error.value.__context__)
    assert chained is None, f"a {type(chained).__name__} from inside a library is chained to it"
    assert out.exists() == existed  # nothing written
    assert snapshot(*watched) == before  # nothing the user passed changed
    no_secret(line, roots=[tmp_path])


class ReachedModelBuild(Exception):
    """Raised where the model is built: pre-flight let the input through."""


@pytest.fixture
def until_model_build(monkeypatch):
    """Stop a run at the model build (after it, for ``build`` cases); record what the task preprocessed."""
    seen: dict = {"build": False}
    build = Task.build_model

    def stop(self, *args, **kwargs):
        if seen["build"]:
            seen["model"], seen["head"] = build(self, *args, **kwargs)
        raise ReachedModelBuild

    monkeypatch.setattr(Task, "build_model", stop)
    for cls in (TextClassification, ImageClassification):

        def record(self, *args, _preprocess=cls.preprocess, **kwargs):
            seen["processed"] = _preprocess(self, *args, **kwargs)
            return seen["processed"]

        monkeypatch.setattr(cls, "preprocess", record)
    return seen


@pytest.mark.parametrize("case", cases(refused=False))
def test_handled(case, tmp_path, request, monkeypatch, tiny_options, until_model_build, capfd):
    until_model_build["build"] = case.build
    options, watched, out, before = run_case(case, tmp_path, request, monkeypatch, tiny_options)
    capfd.readouterr()
    with pytest.raises(ReachedModelBuild):
        finetune(**options)
    log = capfd.readouterr().err
    assert case.message in log, log
    if case.check:
        case.check(until_model_build, log)
    assert snapshot(*watched, skip=out) == before  # nothing the user passed changed
    no_secret(log, roots=[tmp_path])


def test_every_case_is_documented_once():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 170
    for case in CASES:
        assert case.id == case.id.lower() and " " not in case.id
        assert case.what and case.hftl_does.endswith(".") and "|" not in case.what + case.hftl_does
