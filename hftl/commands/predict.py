"""``hftl predict MODEL INPUT``: a saved model's predictions for a data file, a folder of images or stdin,
as CSV or JSONL (:func:`hftl.inference.predict`)."""

from __future__ import annotations

import argparse

__all__ = ["ENTRY", "HELP", "add_arguments"]

HELP = "predict a data file, a folder of images or stdin with a saved model: CSV or JSONL, one row per input"
ENTRY = "hftl.inference.predict:run_command"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="an hftl output folder, a merged or adapter folder, or a Hub id")
    parser.add_argument(
        "input",
        help="a CSV/TSV/JSON/JSONL/parquet file, a .txt file or - for stdin (one text per line, or JSONL), "
        "or a folder of images",
    )
    parser.add_argument(
        "--output", default=None, help="write here (FILE.csv or FILE.jsonl) instead of to stdout"
    )
    parser.add_argument(
        "--format",
        default=None,
        choices=["csv", "jsonl"],
        help="csv or jsonl (default: --output's suffix, else csv)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.add_argument(
        "--all_scores", action="store_true", help="add every class's probability (CSV: score_<class> columns)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="multi-label decision threshold (default: the one the run tuned and saved in config.json)",
    )
    parser.add_argument(
        "--text_column",
        default=None,
        help="the text column (two comma-separated names for a pair; default: the run's, else inferred)",
    )
    parser.add_argument(
        "--image_column", default=None, help="image models: the column of image paths in a data file"
    )
    parser.add_argument("--batch_size", type=int, default=32, help="rows per forward pass (default: 32)")
    parser.add_argument(
        "--trust_remote_code",
        action="store_true",
        help="run code shipped with the model (only if you trust it)",
    )
