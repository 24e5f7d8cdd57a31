"""``hftl push OUTPUT_DIR USER/NAME [--private] [--dry_run]``: publish a run to the Hub (:func:`hftl.push`)."""

from __future__ import annotations

import argparse

__all__ = ["ENTRY", "HELP", "add_arguments"]

HELP = "publish an output folder to the Hugging Face Hub: only the files the run wrote, with its model card"
ENTRY = "hftl.cli:push_command"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "output_dir", help="an hftl output folder (the run's hftl_outputs.json lists what goes up)"
    )
    parser.add_argument("repo_id", help="USER/NAME of the model repo to create or update")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument(
        "--dry_run",
        action="store_true",
        help="write the exact upload folder to OUTPUT_DIR/push_dry_run and push nothing",
    )
    parser.add_argument(
        "--space_app",
        action="store_true",
        help="also upload a Space-ready app.py and requirements.txt (the model's demo page, loading it from the repo)",
    )
