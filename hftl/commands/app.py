"""``hftl app MODEL [--host 127.0.0.1] [--port N]``: a Gradio page for a saved model (:mod:`hftl.app.server`)."""

from __future__ import annotations

import argparse

__all__ = ["ENTRY", "HELP", "add_arguments"]

HELP = "serve a demo page for a saved model on this machine: a text box or an image upload -> label scores"
ENTRY = "hftl.app.server:serve"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        help="a saved text or image classifier: an hftl output folder (its merged model) or a "
        "save_pretrained folder",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)",
    )
    parser.add_argument(
        "--port", type=int, default=None, help="the port (default: the first free one from 7860)"
    )
