"""--long_text on BBC News: each strategy's test accuracy and macro-F1, its run times, and its cost in
sequences and tokens relative to truncate (load-independent, from tokenising the splits).

    python benchmarks/long_text.py                      # truncate, head_tail, chunk (mean), chunk (max)
    python benchmarks/long_text.py --strategies chunk --max_length 128

Each run is the demo recipe with the strategy, one after another (same seed, otherwise the demo's defaults):

    accelerate launch recipes/text_cls.py --max_length 128 --long_text X --output_dir /tmp/lt_X

and prints a Markdown table (docs/long-documents.md holds the measured one).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from transformers import AutoTokenizer

from hftl.data import prepare_data
from hftl.options.config import DataArguments
from hftl.resolve import resolve_model
from hftl.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name -> the recipe's extra options
    "truncate": ["--long_text", "truncate"],
    "head_tail": ["--long_text", "head_tail"],
    "chunk": ["--long_text", "chunk"],
    "chunk-max": ["--long_text", "chunk", "--chunk_aggregation", "max"],
}


def costs(max_length: int, max_train_samples: int | None = None) -> dict[str, dict]:
    """Per strategy: sequences and real tokens per split, and windows per document (tokenising only)."""
    task = get_task("text-classification")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(task.demo_model).path)
    options = dict(dataset="bbc-news", max_length=max_length, max_train_samples=max_train_samples)
    data = prepare_data(DataArguments(**options), task)
    found = {}
    for strategy in ("truncate", "head_tail", "chunk"):
        args = DataArguments(**options, long_text=strategy)
        splits = task.preprocess(data.splits, tokenizer, data.input_columns, max_length, args)
        found[strategy] = {}
        for name, split in splits.items():
            rows = split["input_ids"]
            windows = [row if isinstance(row[0], list) else [row] for row in rows]
            counts = [len(document) for document in windows]
            found[strategy][name] = {
                "documents": len(rows),
                "sequences": sum(counts),
                "tokens": sum(len(window) for document in windows for window in document),
                "windows_mean": statistics.mean(counts),
                "windows_max": max(counts),
            }
    return found


def run(variant: str, max_length: int, extra: list[str]) -> dict:
    output_dir = f"/tmp/lt_{variant}"
    command = [
        "accelerate", "launch", "recipes/text_cls.py", "--max_length", str(max_length),
        *VARIANTS[variant], "--output_dir", output_dir, "--overwrite_output_dir", *extra,
    ]  # fmt: skip
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    wall = time.perf_counter() - start
    metrics = json.loads((Path(output_dir) / "all_results.json").read_text())
    return {"variant": variant, "wall": wall, **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default=",".join(VARIANTS))
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--max_train_samples", type=int, help="train on the first N articles (all if unset)")
    parser.add_argument("--json", default="/tmp/lt_results.jsonl", help="one line of results per run")
    parser.add_argument("--costs_only", action="store_true", help="only tokenise and count")
    arguments, extra = parser.parse_known_args()
    cost = costs(arguments.max_length, arguments.max_train_samples)
    print(json.dumps(cost, indent=1), flush=True)
    if arguments.costs_only:
        return
    if arguments.max_train_samples:
        extra = [*extra, "--max_train_samples", str(arguments.max_train_samples)]
    results = []
    for variant in arguments.strategies.split(","):
        result = run(variant, arguments.max_length, extra)
        results.append(result)
        with open(arguments.json, "a") as handle:
            handle.write(json.dumps(result) + "\n")
    base = cost["truncate"]
    print(
        "\n| strategy | test accuracy | test macro-F1 | train runtime (s) | eval runtime (s) | test runtime (s) | "
        "windows per document, test (mean / max) | train tokens vs truncate | test tokens vs truncate |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for result in results:
        strategy = VARIANTS[result["variant"]][1]
        test, train = cost[strategy]["test"], cost[strategy]["train"]
        print(
            f"| {result['variant']} | {result['test_accuracy']:.4f} | {result['test_macro_f1']:.4f} | "
            f"{result['train_runtime']:.0f} | {result['eval_runtime']:.1f} | {result['test_runtime']:.1f} | "
            f"{test['windows_mean']:.2f} / {test['windows_max']} | "
            f"{train['tokens'] / base['train']['tokens']:.2f}x | {test['tokens'] / base['test']['tokens']:.2f}x |"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
