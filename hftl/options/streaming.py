"""``--streaming`` and its settings, as fields of :class:`hftl.DataArguments` (the reading itself is
``hftl/data/streaming.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["StreamingOptions"]


@dataclass
class StreamingOptions:
    """Reading the training data as a stream; see ``docs/scaling.md``."""

    streaming: bool = field(
        default=False,
        metadata={
            "help": "Read the training data as a stream (text classification; files or a Hub dataset too "
            "large for memory or disk cache): needs --max_steps. Labels come from the first "
            "--label_scan_rows rows, validation and test from their files (else carved from those rows, "
            "which then don't train); each process reads its own share; see docs/scaling.md."
        },
    )
    label_scan_rows: int = field(
        default=10_000,
        metadata={
            "help": "--streaming: rows read before training to find the label set (and to carve validation "
            "and test from when there are no such files)."
        },
    )
    shuffle_buffer: int = field(
        default=10_000,
        metadata={"help": "--streaming: rows in the shuffling buffer (the stream is shuffled within it)."},
    )
