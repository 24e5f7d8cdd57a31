"""Transfer-gain study: test accuracy against the number of labelled examples per class, for a model trained
from scratch, a linear probe, LoRA, full fine-tuning and (text) a distilled student, all through
``hftl.finetune``.

Protocol. Every run trains for the same number of optimizer steps (--steps, batch --batch_size), whatever
the method and k, and is scored on one fixed test set (--test_size rows drawn once, stratified, seed 0, from
the dataset's test split). The k labelled rows per class come from hftl's ``samples_per_class`` option with
``split_seed`` = the run's seed: the same rows for every method at a seed, other rows at another seed, and
the rows for a smaller k among those for a larger k. ``seed`` (head init, batch order) is the same seed.
The distilled student (text) is the full fine-tuned model of the same k and seed (the teacher) cut to
--student_layers layers, trained on every training text: the k per class with their labels, the rest with
the teacher's soft targets only.

    # text: MiniLM-L6 on BBC News; image: EfficientNet-Lite0 on the mnist subset (each <= 30 min, 2 CPU cores)
    python benchmarks/transfer_curve.py --task text
    python benchmarks/transfer_curve.py --task image
    # a smoke run in about a minute, written to outputs/benchmarks-tiny
    python benchmarks/transfer_curve.py --task text --tiny
    # the report again from the saved runs, no training
    python benchmarks/transfer_curve.py --task text --replot

Each finished run is appended to <out>/transfer-<task>.jsonl at once; the same command run again skips the
runs already there (an interrupted study resumes), and other --k/--seeds add to them. Writes
<out>/transfer-<task>.md (command, date, machine, table) and .png; --out defaults to docs/benchmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import shlex
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import transformers  # noqa: E402
from _bench import machine  # noqa: E402

from hftl import finetune  # noqa: E402

TEXT_MODEL, IMAGE_MODEL = "sentence-transformers/all-MiniLM-L6-v2", "timm/tf_efficientnet_lite0.in1k"
LABELS = {
    "scratch": "from scratch (random weights)",
    "linear-probe": "linear probe (head only)",
    "lora": "LoRA r=8 (+ head)",
    "full": "full fine-tuning",
    "distill": "distilled student",
}
OPTIONS = {  # hftl.finetune options of each method
    "scratch": dict(method="full", from_scratch=True),
    "linear-probe": dict(method="linear-probe"),
    "lora": dict(method="lora", lora_merge=False),  # the adapter only: no merged copy to write
    "full": dict(method="full"),
    "distill": dict(method="distill"),
}
RUN_ORDER = ("full", "distill", "lora", "linear-probe", "scratch")  # the teacher (full) first
# Rates: the built-in datasets' tuned ones (hftl/data/builtin.py), from scratch and the student as full
# fine-tuning, except LoRA's: tuned for a whole epoch, it barely moves in this budget (BBC, k=256, seed 0,
# 20 steps: 2e-3 0.436, 1e-2 0.844 test accuracy). mnist has tuned only full's rate: Lite0's probe 1e-2 (0.84
# at k=64, 60 steps, 96 px) and LoRA 5e-3 (k=64, 60 steps: 0.776 at 96 px, 0.766 at 64 px; at 40 steps every
# rate from 1e-3 to 3e-2 stayed below 0.37, hence 60 steps for images).
DEFAULTS = {
    "text": dict(model=TEXT_MODEL, dataset="bbc-news", steps=20, max_length=64, test_size=200,
                 k="4,16,64,256", methods="scratch,linear-probe,lora,full,distill",
                 lr={"full": 2e-4, "scratch": 2e-4, "lora": 1e-2, "linear-probe": 3e-2, "distill": 2e-4}),
    "image": dict(model=IMAGE_MODEL, dataset="mnist", steps=60, image_size=64, test_size=500,
                  k="4,16,64,256", methods="scratch,linear-probe,lora,full",
                  lr={"full": 1e-3, "scratch": 1e-3, "lora": 5e-3, "linear-probe": 1e-2}),
}  # fmt: skip
TINY = dict(steps=2, k="2,all", seeds="0", test_size=20, train_per_class=6, max_length=32, image_size=32,
            batch_size=8)  # fmt: skip


# --- data: written once, so every run reads the same train rows and the same fixed test set ------------
def _stratified(split: datasets.Dataset, label: str, size: int | None, seed: int = 0) -> datasets.Dataset:
    """``size`` rows in the class proportions of ``split`` (all when None or larger)."""
    if size is None or size >= len(split):
        return split
    if not isinstance(split.features[label], datasets.ClassLabel):
        split = split.class_encode_column(label)
    return split.train_test_split(test_size=size, seed=seed, stratify_by_column=label)["test"]


def _per_class(split: datasets.Dataset, label: str, count: int, seed: int = 0) -> datasets.Dataset:
    """At most ``count`` rows of each class (a seeded draw)."""
    values = np.asarray(split.with_format("numpy")[label])
    order = np.random.default_rng(seed).permutation(len(values))
    kept = np.concatenate([order[values[order] == value][:count] for value in np.unique(values)])
    return split.select(np.sort(kept))


def write_data(args, folder: Path) -> dict:
    """train / validation / test parquet files from ``--dataset``'s splits (parquet keeps class names and
    images), written once per data setup. Validation holds 2 rows per class: hftl scores it once after
    training; nobody reads it here. Returns the class count, training rows per class and test size."""
    from hftl.data.columns import find_label_column
    from hftl.data.loading import load_raw_dataset

    key = {name: getattr(args, name) for name in ("dataset", "test_size", "train_per_class")}
    described = folder / "info.json"
    if described.is_file() and json.loads(described.read_text())["key"] == key:
        return json.loads(described.read_text())["info"]
    shutil.rmtree(folder, ignore_errors=True)
    raw, _ = load_raw_dataset(args.dataset)
    if "test" not in raw:
        sys.exit(f"--dataset {args.dataset} has no test split; the study needs a fixed one")
    label = find_label_column(raw["train"], None)
    train = raw["train"]
    if args.train_per_class:
        train = _per_class(train, label, args.train_per_class)
    splits = {
        "train": train,
        "validation": _per_class(raw.get("validation", raw["test"]), label, 2),
        "test": _stratified(raw["test"], label, args.test_size),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        split.to_parquet(str(folder / f"{name}.parquet"))
    counts = np.unique(np.asarray(train.with_format("numpy")[label]), return_counts=True)[1]
    info = {"classes": len(counts), "train_per_class": counts.tolist(), "test": len(splits["test"])}
    described.write_text(json.dumps({"key": key, "info": info}))
    return info


# --- one run -----------------------------------------------------------------------------------------
def setup(args) -> dict:
    """What a saved run must share with this command to be reused (k, seeds and methods may differ)."""
    keys = ["model", "dataset", "steps", "batch_size", "test_size", "train_per_class", "student_layers"]
    keys += ["max_length"] if args.task == "text" else ["image_size"]
    # from-scratch runs recompute BatchNorm statistics since hftl's recalibrate_batchnorm (older rows didn't)
    return {key: getattr(args, key) for key in keys} | {"lr": args.lr, "scratch_batchnorm": "recalibrated"}


def run_one(args, data: Path, method: str, k: int | None, seed: int, output_dir: Path, teacher=None) -> dict:
    options = dict(OPTIONS[method], dataset=str(data), output_dir=str(output_dir), overwrite_output_dir=True,
                   seed=seed, split_seed=seed, samples_per_class=k, max_steps=args.steps,
                   per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=32,
                   learning_rate=args.lr[method],
                   eval_strategy="no", save_strategy="no", logging_steps=args.steps, disable_tqdm=True,
                   report_to="none")  # fmt: skip
    if args.task == "text":
        options.update(max_length=args.max_length)
    else:
        options.update(task="image-classification", image_size=args.image_size, augment="none")
    if method == "distill":
        options.update(teacher=str(teacher), student_layers=args.student_layers)
    else:
        options.update(model=args.model)
    start, cpu = time.perf_counter(), time.process_time()
    with quiet(args):
        metrics = finetune(**options).metrics
    row = {
        "method": method, "k": k if k is not None else "all", "seed": seed,
        "accuracy": metrics["test_accuracy"], "macro_f1": metrics.get("test_macro_f1"),
        "train_rows": metrics["train_samples"], "train_s": metrics["train_runtime"],
        "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
    }  # fmt: skip
    if method == "distill":
        row["teacher_accuracy"] = metrics["teacher_test_accuracy"]
    return row


def quiet(args):
    """Trainer prints its log dicts when tqdm is off: hidden unless --verbose."""
    return contextlib.redirect_stdout(io.StringIO()) if not args.verbose else contextlib.nullcontext()


# --- the study: resumable, seed by seed --------------------------------------------------------------
def load_rows(path: Path, wanted: dict) -> list[dict]:
    rows = (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )
    other = [row for row in rows if row["setup"] != wanted]
    if other:
        changed = sorted(key for key in wanted if other[0]["setup"].get(key) != wanted[key])
        sys.exit(f"{path} holds runs of another setup ({', '.join(changed)} differ); pass --fresh to replace "
                 "them, or --out elsewhere")  # fmt: skip
    return rows


def run_study(args, results: Path, workdir: Path) -> None:
    """Every (seed, k, method) not yet in ``results``, seed by seed; each run's row is appended at once."""
    wanted = setup(args)
    done = {(row["method"], row["k"], row["seed"]) for row in load_rows(results, wanted)}
    plan = [(seed, k, method) for seed in args.seeds for k in args.k for method in RUN_ORDER
            if method in args.methods and (method, k if k is not None else "all", seed) not in done]  # fmt: skip
    info = write_data(args, workdir / "data")
    print(f"[study] {args.task}: {len(plan)} runs to do, {len(done)} already in {results}; "
          f"{info['classes']} classes, {min(info['train_per_class'])}-{max(info['train_per_class'])} training "
          f"rows per class, {info['test']} test rows", flush=True)  # fmt: skip
    began, times = time.perf_counter(), {}
    round_began = began
    for index, (seed, k, method) in enumerate(plan):
        if index and seed != plan[index - 1][0]:  # a new seed: would its runs end within --budget_s?
            elapsed, last_round = time.perf_counter() - began, time.perf_counter() - round_began
            if args.budget_s and elapsed + last_round > args.budget_s:
                print(
                    f"[study] stopping before seed {seed}: another seed would pass --budget_s {args.budget_s}"
                )
                break
            round_began = time.perf_counter()
        teacher = workdir / f"teacher-{k}-{seed}"
        if method == "distill" and not (teacher / "config.json").is_file():  # resumed after the full run
            run_one(args, workdir / "data", "full", k, seed, teacher)
        output_dir = teacher if method == "full" and "distill" in args.methods else workdir / "run"
        row = run_one(args, workdir / "data", method, k, seed, output_dir, teacher)
        row.update(setup=wanted, data=info)
        with results.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        if method == "distill":
            shutil.rmtree(teacher, ignore_errors=True)
        elif output_dir != teacher:
            shutil.rmtree(output_dir, ignore_errors=True)
        times.setdefault(method, []).append(row["wall_s"])
        mean = statistics.fmean(t for values in times.values() for t in values)
        left = sum(statistics.fmean(times.get(m, [mean])) for _, _, m in plan[index + 1 :])
        print(f"[study] {index + 1}/{len(plan)} seed {seed} k {row['k']} {method}: accuracy "
              f"{row['accuracy']:.3f}, {row['wall_s']:.0f} s; elapsed {(time.perf_counter() - began) / 60:.1f} "
              f"min, ETA {left / 60:.1f} min", flush=True)  # fmt: skip
    for leftover in workdir.glob("teacher-*"):  # a teacher whose student was already done
        shutil.rmtree(leftover, ignore_errors=True)


# --- report -------------------------------------------------------------------------------------------
def _groups(rows: list[dict]) -> dict[str, dict[str | int, list[dict]]]:
    groups: dict = {}
    for method in LABELS:
        for row in rows:
            if row["method"] == method:
                groups.setdefault(method, {}).setdefault(row["k"], []).append(row)
    return {m: dict(sorted(g.items(), key=lambda item: _order(item[0]))) for m, g in groups.items()}


def _order(k) -> float:
    return float("inf") if k == "all" else float(k)


def _mean(rows: list[dict], key: str = "accuracy") -> float:
    return statistics.fmean(row[key] for row in rows)


def table(groups: dict, args, info: dict) -> str:
    ks = sorted({k for by_k in groups.values() for k in by_k}, key=_order)
    per_class = round(statistics.fmean(info["train_per_class"]))
    heads = [f"all (≈{per_class})" if k == "all" else str(k) for k in ks]
    most = max(len(rows) for by_k in groups.values() for rows in by_k.values())  # seeds of a complete cell
    lines = [
        "| method | " + " | ".join(heads) + " | train s/run | wall s/run |",
        "|---" * (len(ks) + 3) + "|",
    ]
    for method, by_k in groups.items():
        cells = []
        for k in ks:
            rows = by_k.get(k, [])
            values = [row["accuracy"] for row in rows]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            fewer = f" (n={len(values)})" if len(values) < most else ""
            cells.append(f"{statistics.fmean(values):.3f} ± {spread:.3f}{fewer}" if values else "–")
        every = [row for rows in by_k.values() for row in rows]
        name = LABELS[method] + (f" ({args.student_layers} layers)" if method == "distill" else "")
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {_mean(every, 'train_s'):.1f} | {_mean(every, 'wall_s'):.1f} |"
        )
    return "\n".join(lines)


def targets(groups: dict, task: str) -> str:
    """The two gaps the issue sets targets for on text (BBC News), where the runs to judge them exist."""
    lines, text = [], task == "text"
    full, scratch, probe = groups.get("full", {}), groups.get("scratch", {}), groups.get("linear-probe", {})
    few = [k for k in full if k != "all" and k <= 16 and k in scratch]
    if few:
        gaps = ", ".join(f"{k}/class +{100 * (_mean(full[k]) - _mean(scratch[k])):.1f}" for k in few)
        lines.append(
            f"- Full fine-tuning over from scratch with ≤ 16 examples per class{' (target ≥ 50 points)' if text else ''}: "
            f"{gaps} points."
        )
    if 256 in full and 256 in probe:
        gap = 100 * (_mean(full[256]) - _mean(probe[256]))
        verdict = f" ({'met' if gap <= 5 else 'not met'})" if text else ""
        lines.append(f"- Linear probe vs full fine-tuning at 256/class{' (target within 5 points)' if text else ''}: "
                     f"{gap:.1f} points below{verdict}.")  # fmt: skip
    return "\n".join(lines)


def plot(groups: dict, args, info: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_class = statistics.fmean(info["train_per_class"])
    colours = {"scratch": "#7f7f7f", "linear-probe": "#4c72b0", "lora": "#55a868", "full": "#dd8452", "distill": "#8172b2"}  # fmt: skip
    figure, axis = plt.subplots(figsize=(9.0, 4.6))
    ticks = {}
    for method, by_k in groups.items():
        xs = [per_class if k == "all" else k for k in by_k]
        ticks.update({x: str(k) for x, k in zip(xs, by_k, strict=True) if k != "all"})
        if "all" in by_k:  # set lower when it sits close to the largest k on the log axis
            close = any(1 / 1.6 < x / per_class < 1.6 for x in ticks if x != per_class)
            ticks[per_class] = ("\n" if close else "") + f"all (≈{per_class:.0f})"
        values = [[row["accuracy"] for row in rows] for rows in by_k.values()]
        label = LABELS[method] + (f", {args.student_layers} layers" if method == "distill" else "")
        axis.plot(xs, [statistics.fmean(v) for v in values], marker="o", color=colours[method], label=label)
        axis.fill_between(
            xs, [min(v) for v in values], [max(v) for v in values], color=colours[method], alpha=0.18
        )
    axis.axhline(1 / info["classes"], color="black", linestyle=":", linewidth=1, label="chance")
    axis.set_xscale("log")
    axis.set_xticks(list(ticks), list(ticks.values()))
    axis.minorticks_off()
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("labelled training examples per class (log scale)")
    axis.set_ylabel(f"test accuracy ({info['test']} fixed test examples)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)  # outside: no line hidden
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def report(args, results: Path) -> None:
    rows = load_rows(results, setup(args))
    if not rows:
        sys.exit(f"no runs in {results} yet")
    info = rows[-1]["data"]
    groups = _groups(rows)
    seeds = sorted({row["seed"] for row in rows})
    model = args.model.split("/")[-1] + (" (tiny)" if args.tiny else "")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    size = f"max_length {args.max_length}" if args.task == "text" else f"{args.image_size} px"
    title = (f"Transfer gain: {model} on {args.dataset}, {args.steps} steps of batch {args.batch_size} per run\n"
             f"mean and min–max over seeds {', '.join(map(str, seeds))}; {os.cpu_count()}-core CPU, {when[:10]}")  # fmt: skip
    name = f"transfer-{args.task}"
    plot(groups, args, info, args.out / f"{name}.png", title)
    rates = ", ".join(f"{method} {args.lr[method]:g}" for method in groups)
    distill = (f" The distilled student is the full fine-tuned model of the same k and seed cut to {args.student_layers} "
               "layers, trained with distill_alpha 0.5, temperature 2 on every training text: the k per class with "
               "their labels, the others with the teacher's soft targets only (its train s/run includes the teacher's "
               "forward passes; the teacher's own training is the full run).") if "distill" in groups else ""  # fmt: skip
    batchnorm = (" From-scratch runs recompute their BatchNorm statistics with the final weights after training "
                 "(hftl's `recalibrate_batchnorm`, on by default with `from_scratch`).") if args.task == "image" and "scratch" in groups else ""  # fmt: skip
    notes = (
        f"Test accuracy, mean ± standard deviation over seeds {', '.join(map(str, seeds))}, on {info['test']} fixed "
        f"test examples. Every run: `hftl.finetune`, {args.steps} optimizer steps of batch {args.batch_size} "
        f"(the same budget for every method and k), {size}, learning rates {rates}, linear decay, no evaluation "
        "during training. The k examples per class are hftl's `samples_per_class` drawn with `split_seed` = the "
        f"run's seed (the same rows for every method; `seed` is the same seed); the training split has "
        f"{min(info['train_per_class'])}-{max(info['train_per_class'])} rows per class"
        f"{' (all = every one of them)' if any('all' in by_k for by_k in groups.values()) else ''}.{distill}{batchnorm} "
        "Wall s/run: the whole `finetune` call (load, tokenise or decode, train, test, save). The study's "
        f"process kept {sum(r['cpu_s'] for r in rows) / sum(r['wall_s'] for r in rows):.2f} of the "
        f"{os.cpu_count()} cores busy on average (CPU time over wall time; far below {os.cpu_count()} means "
        f"other work competed for the cores and the times are inflated). Raw runs: `{name}.jsonl`."
    )
    goal = targets(groups, args.task)
    command = "python " + shlex.join(["benchmarks/transfer_curve.py", *args.argv])
    text = (f"## {title.splitlines()[0]}\n\n```\n{command}\n```\n\n{when}; {machine()}\n\n{table(groups, args, info)}\n\n"
            f"{notes}\n" + (f"\n{goal}\n" if goal else "") + f"\n![{title.splitlines()[0]}]({name}.png)\n")  # fmt: skip
    (args.out / f"{name}.md").write_text(text)
    print(f"\n{text}\nwrote {args.out / name}.md and .png")


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=["text", "image"], default="text")
    parser.add_argument("--model", help=f"default {TEXT_MODEL} (text), {IMAGE_MODEL} (image)")
    parser.add_argument("--dataset", help="an hftl dataset with a test split (default bbc-news, mnist)")
    parser.add_argument("--k", help="examples per class, comma-separated; 'all' = every training row "
                        "(default 4,16,64,256)")  # fmt: skip
    parser.add_argument(
        "--seeds", default="0,1,2", help="comma-separated seeds (sample, head init, batch order)"
    )
    parser.add_argument("--methods", help="comma-separated subset of " + ", ".join(LABELS))
    parser.add_argument("--steps", type=int, help="optimizer steps of every run (default text 20, image 60)")
    parser.add_argument("--batch_size", type=int, help="per step (default 16)")
    parser.add_argument(
        "--lr", action="append", default=[], metavar="METHOD=RATE", help="override a method's rate"
    )
    parser.add_argument("--max_length", type=int, help="text: tokens per example (default 64)")
    parser.add_argument("--image_size", type=int, help="image: pixels (default 64)")
    parser.add_argument(
        "--test_size", type=int, help="rows of the fixed test set (default text 200, image 500)"
    )
    parser.add_argument("--student_layers", type=int, default=3, help="distill: layers kept of the teacher's")
    parser.add_argument(
        "--tiny", action="store_true", help="a smoke run in about a minute (outputs/benchmarks-tiny)"
    )
    parser.add_argument(
        "--budget_s", type=float, help="start no further seed whose runs would end after this"
    )
    parser.add_argument("--replot", action="store_true", help="only rewrite the report from the saved runs")
    parser.add_argument("--fresh", action="store_true", help="discard the saved runs of this task first")
    parser.add_argument(
        "--out", help="report folder (default docs/benchmarks; outputs/benchmarks-tiny with --tiny)"
    )
    parser.add_argument("--verbose", action="store_true", help="keep hftl's and transformers' log lines")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the report's command line
    defaults = dict(DEFAULTS[args.task], train_per_class=None, batch_size=16)
    lr = dict(defaults.pop("lr"))
    if args.tiny:
        defaults.update(TINY)
        if args.seeds == parser.get_default("seeds"):
            args.seeds = TINY["seeds"]
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    for override in args.lr:
        method, _, rate = override.partition("=")
        if method not in lr:
            parser.error(f"--lr {override}: the method must be one of {', '.join(lr)}")
        lr[method] = float(rate)
    args.lr = lr
    args.k = [None if k.strip() == "all" else int(k) for k in args.k.split(",")]
    args.seeds = [int(seed) for seed in args.seeds.split(",")]
    args.methods = [m.strip() for m in args.methods.split(",")]
    unknown = [m for m in args.methods if m not in OPTIONS or (m == "distill" and args.task != "text")]
    if unknown:
        parser.error(f"--methods: {', '.join(unknown)} not available for --task {args.task}")
    args.out = Path(args.out or ("outputs/benchmarks-tiny" if args.tiny else "docs/benchmarks"))
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if not args.verbose:
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message="Could not find a config file")  # peft, offline LoRA save
        datasets.disable_progress_bars()
        logging.getLogger("hftl").addHandler(logging.NullHandler())  # hftl then adds no printing handler
        logging.getLogger("hftl").setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / f"transfer-{args.task}.jsonl"
    workdir = Path("outputs") / f"transfer-{args.task}{'-tiny' if args.tiny else ''}"
    if args.fresh:
        results.unlink(missing_ok=True)
    datasets.config.HF_DATASETS_CACHE = workdir / "datasets-cache"
    if not args.replot:
        run_study(args, results, workdir)
    report(args, results)


if __name__ == "__main__":
    main()
