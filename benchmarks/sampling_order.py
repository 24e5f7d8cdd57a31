"""Does the training order cost accuracy? hftl's length-grouped batches against random batches, trained to
at least one epoch on several seeds (issue 15: the BBC-at-512 gap seen after 8 steps).

Every variant trains MiniLM-L6 with ``hftl.finetune`` on the same rows (written once by
``throughput.text_folder``), for the same number of epochs, at the same learning rate, and is scored on the
same fixed test rows; only ``train_sampling_strategy`` (and, for the ``grouped-<M>`` variants, the size of
the length groups: M batches instead of the stock 50) differs. Padding is counted from the batches the
model was fed.

    # BBC News at max_length 512 (length correlates with topic) and tweets at 128, 3 seeds each
    python benchmarks/sampling_order.py --dataset bbc
    python benchmarks/sampling_order.py --dataset tweets

Each finished run is appended to <out>/order-<dataset>.jsonl; the same command again skips the runs already
there. Writes <out>/order-<dataset>.md and .png (--out defaults to docs/benchmarks).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import transformers  # noqa: E402
from _bench import Measure, mean_sd, write_report  # noqa: E402
from throughput import text_folder  # noqa: E402

import hftl.trainer  # noqa: E402
from hftl import finetune  # noqa: E402
from hftl.resolve import resolve_model  # noqa: E402

DEFAULTS = {
    "bbc": dict(max_length=512, lr=2e-4, train_size=480, eval_size=200, epochs=1.0),
    "tweets": dict(max_length=128, lr=1e-4, train_size=2000, eval_size=400, epochs=1.0),
}


@contextlib.contextmanager
def group_size(batches: int | None):
    """Length groups of ``batches`` batches (None: the stock 50) for the runs inside."""
    original = hftl.trainer.get_length_grouped_indices
    if batches is not None:
        hftl.trainer.get_length_grouped_indices = lambda lengths, batch_size, generator=None: original(
            lengths, batch_size, mega_batch_mult=batches, generator=generator
        )
    try:
        yield
    finally:
        hftl.trainer.get_length_grouped_indices = original


def variant_options(name: str) -> tuple[str, int | None]:
    if name == "random":
        return "random", None
    if name == "grouped":
        return "group_by_length", None
    return "group_by_length", int(name.split("-")[1])


def run(args, data: Path, variant: str, seed: int) -> dict:
    strategy, batches = variant_options(variant)
    counter = Measure(warmup=1, batch_size=16)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out, group_size(batches), contextlib.redirect_stderr(io.StringIO()):
        result = finetune(
            model=resolve_model("sentence-transformers/all-MiniLM-L6-v2").path,
            dataset=str(data),
            output_dir=out,
            max_length=args.max_length,
            learning_rate=args.lr,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=16,
            train_sampling_strategy=strategy,
            seed=seed,
            eval_strategy="no",
            save_strategy="no",
            logging_steps=10,
            disable_tqdm=True,
            callbacks=[counter],
        )
    real = sum(b[1] for b in counter.batches)
    padded = sum(b[2] for b in counter.batches)
    return {
        "variant": variant,
        "seed": seed,
        "test_accuracy": result.metrics["test_accuracy"],
        "test_macro_f1": result.metrics["test_macro_f1"],
        "steps": result.trainer.state.global_step,
        "padding": 1 - real / padded if padded else None,
        "train_runtime": result.metrics["train_runtime"],
        "wall_s": time.perf_counter() - started,
    }


def report(args, runs: list[dict], command: str) -> None:
    lines = [
        "| order | test accuracy (mean ± sd) | per seed | macro-F1 | padding | training time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    chart = {}
    for variant in args.variants:
        mine = sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["seed"])
        if not mine:
            continue
        accuracies = [r["test_accuracy"] for r in mine]
        chart[variant] = accuracies
        lines.append(
            f"| {variant} | {mean_sd(accuracies, 3)} | {' / '.join(f'{a:.3f}' for a in accuracies)} "
            f"| {mean_sd([r['test_macro_f1'] for r in mine], 3)} "
            f"| {mean_sd([r['padding'] for r in mine], 1, percent=True)} "
            f"| {statistics.fmean(r['train_runtime'] for r in mine):.0f} s |"
        )
    steps = runs[0]["steps"]
    notes = (
        f"{args.train_size} training rows, {args.epochs:g} epoch(s) = {steps} optimizer steps of 16, learning "
        f"rate {args.lr:g}, max_length {args.max_length}, seeds {', '.join(map(str, args.seeds))}; scored on "
        f"{args.eval_size} fixed test rows. `grouped` is the stock grouping (groups of 50 batches); "
        "`grouped-M` groups M batches; `random` is plain shuffling. Padding: the share of fed token positions "
        "that were padding. Training time is for orientation only (these runs shared the CPU with other "
        "work): speed is compared side by side in benchmarks/throughput.py."
    )
    write_report(Path(args.out), f"order-{args.dataset}", f"Batch order and accuracy: {args.dataset}",
                 "\n".join(lines), chart, "test accuracy", command, notes)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DEFAULTS), default="bbc")
    parser.add_argument("--variants", nargs="+", default=["grouped", "random"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--max_length", type=int)
    parser.add_argument("--train_size", type=int)
    parser.add_argument("--eval_size", type=int)
    parser.add_argument("--out", default="docs/benchmarks")
    args = parser.parse_args()
    for key, value in DEFAULTS[args.dataset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    transformers.logging.set_verbosity_error()
    command = "python benchmarks/sampling_order.py " + shlex.join(sys.argv[1:])
    results = Path(args.out) / f"order-{args.dataset}.jsonl"
    results.parent.mkdir(parents=True, exist_ok=True)
    runs = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    with tempfile.TemporaryDirectory() as workdir:
        data = text_folder(args, Path(workdir))
        for seed in args.seeds:  # seeds outermost: every variant of a seed runs before the next seed
            for variant in args.variants:
                if any(r["variant"] == variant and r["seed"] == seed for r in runs):
                    continue
                outcome = run(args, data, variant, seed)
                runs.append(outcome)
                with results.open("a") as handle:
                    handle.write(json.dumps(outcome) + "\n")
                print(json.dumps(outcome), flush=True)
    report(args, [r for r in runs if r["variant"] in args.variants and r["seed"] in args.seeds], command)


if __name__ == "__main__":
    main()
