"""``hftl export MODEL --format onnx [--quantize dynamic-int8]``: ONNX files of a saved classifier, checked
against PyTorch on the model's test split (:func:`hftl.export.export_model`)."""

from __future__ import annotations

import argparse

__all__ = ["ENTRY", "HELP", "add_arguments"]

HELP = "export a saved classifier to ONNX (optionally int8), checked against PyTorch: agreement, accuracy, latency"
ENTRY = "hftl.export.api:export_command"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", help="an hftl output folder, a merged or adapter folder, or a Hub id (with --output_dir)"
    )
    parser.add_argument("--format", default="onnx", help="export format: onnx (default; the only one)")
    parser.add_argument(
        "--quantize",
        default=None,
        help="also write model_int8.onnx: dynamic-int8 (onnxruntime's dynamic quantisation of the weights)",
    )
    parser.add_argument(
        "--output_dir", default=None, help="where the export goes (default: MODEL/onnx); hftl's files only"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="labelled data to check on (a file, folder or built-in dataset; default: the run's own test split)",
    )
    parser.add_argument("--split", default="test", help="the split of --data to check on (default: test)")
    parser.add_argument(
        "--min_agreement",
        type=float,
        default=0.99,
        help="refuse the fp32 export when fewer check rows get PyTorch's prediction (default: 0.99)",
    )
    parser.add_argument(
        "--min_agreement_int8",
        type=float,
        default=0.95,
        help="the same for the int8 file (default: 0.95; quantisation moves some close calls)",
    )
    parser.add_argument(
        "--max_check_samples", type=int, default=None, help="check on at most this many rows (default: all)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for PyTorch and onnxruntime alike in the latency check (default: torch's)",
    )
    parser.add_argument(
        "--latency_runs",
        type=int,
        default=20,
        help="timed calls per latency figure, median taken (default: 20)",
    )
    parser.add_argument(
        "--trust_remote_code",
        action="store_true",
        help="run code shipped with the model (only if you trust it)",
    )
