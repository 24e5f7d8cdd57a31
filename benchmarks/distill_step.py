"""What a distillation training step costs, side by side with a student-only step, in one process.

The three variants train the same 3-layer student (a truncated copy of the teacher) on bbc-news for the
same number of steps, interleaved, several repeats each; the table shows the median seconds per step
(Trainer's ``train_runtime`` / steps, so model loading and the one-off logit cache are excluded and
reported apart).

    python benchmarks/distill_step.py --teacher outputs/teacher [--steps 30 --repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from hftl import finetune

VARIANTS = {
    "student only (full, no teacher)": dict(method="full"),
    "distill, cached teacher logits": dict(method="distill", teacher_logits="cache"),
    "distill, online teacher": dict(method="distill", teacher_logits="online"),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--teacher", required=True, help="a fine-tuned teacher directory (e.g. the text demo's output)"
    )
    parser.add_argument("--student_layers", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    setup: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, options in VARIANTS.items():  # interleaved, so drift hits every variant alike
            extra = {"teacher": args.teacher} if options["method"] == "distill" else {"model": args.teacher}
            with tempfile.TemporaryDirectory() as output_dir:
                start = time.perf_counter()
                result = finetune(
                    **options,
                    **extra,
                    student_layers=args.student_layers,
                    dataset="bbc-news",
                    max_steps=args.steps,
                    eval_strategy="no",
                    save_strategy="no",
                    disable_tqdm=True,
                    logging_steps=args.steps,
                    output_dir=output_dir,
                    overwrite_output_dir=True,
                )
                wall = time.perf_counter() - start
            runtime = result.metrics["train_runtime"]
            seconds[name].append(runtime / args.steps)
            setup[name].append(wall - runtime)

    baseline = statistics.median(seconds["student only (full, no teacher)"])
    print(f"\n{args.steps} steps of batch 16, {args.repeats} interleaved repeats, medians:\n")
    print("| variant | seconds per step | vs student only | whole run outside the training loop |")
    print("|---|---|---|---|")
    for name in VARIANTS:
        step = statistics.median(seconds[name])
        print(f"| {name} | {step:.3f} | {step / baseline:.2f}x | {statistics.median(setup[name]):.1f} s |")


if __name__ == "__main__":
    main()
