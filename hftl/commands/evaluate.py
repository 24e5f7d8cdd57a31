"""``hftl evaluate MODEL [DATA] --output_dir DIR``: a saved model's metrics, per-class report and
confusion matrix on labelled data or the run's own test split (:func:`hftl.inference.evaluate`)."""

from __future__ import annotations

import argparse

__all__ = ["ENTRY", "HELP", "add_arguments"]

HELP = (
    "score a saved model on labelled data (default: the run's test split): metrics, report, confusion matrix"
)
ENTRY = "hftl.inference.evaluate:run_command"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="an hftl output folder, a merged or adapter folder, or a Hub id")
    parser.add_argument(
        "data",
        nargs="?",
        default=None,
        help="labelled data: a CSV/TSV/JSON/JSONL/parquet file, a folder, a built-in or Hub dataset "
        "(default: the run's own split, re-created from its hftl_config.yaml)",
    )
    parser.add_argument(
        "--output_dir",
        required=True,
        help="where all_results.json, the report and the plots go (new, empty, or an earlier evaluation's)",
    )
    parser.add_argument("--split", default="test", help="the split of DATA to score (default: test)")
    parser.add_argument(
        "--batch_size", type=int, default=None, help="rows per forward pass (default: the run's, else 8)"
    )
    parser.add_argument(
        "--threshold", type=float, default=None, help="multi-label decision threshold (default: the run's)"
    )
    parser.add_argument(
        "--text_column", default=None, help="DATA's text column(s), when not the run's (comma-separated pair)"
    )
    parser.add_argument("--label_column", default=None, help="DATA's label column, when not inferred")
    parser.add_argument(
        "--trust_remote_code",
        action="store_true",
        help="run code shipped with the model (only if you trust it)",
    )
