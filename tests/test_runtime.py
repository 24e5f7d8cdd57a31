"""Runtime settings: accelerate launch's OMP_NUM_THREADS=1 on a GPU-less machine is undone; length-grouped
batches read their lengths without a pass over the rows and shuffle by seed and epoch; an image run's
dataloader worker processes end with the run."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from hftl import HftlTrainingArguments
from hftl.run.cpu import use_all_cpu_cores
from hftl.trainer import HftlTrainer

from .test_image import image_folder, tiny_resnet  # noqa: F401 - the fixtures


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_single_thread_from_accelerate_is_raised(monkeypatch, restore_threads):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("psutil.cpu_count", lambda logical=True: 4)
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("HFTL_NUM_THREADS", raising=False)
    torch.set_num_threads(1)
    use_all_cpu_cores(world_size=2)
    assert torch.get_num_threads() == 2  # 4 physical cores shared by 2 processes


def test_threads_are_left_alone_outside_accelerate(monkeypatch, restore_threads):
    for key in [key for key in __import__("os").environ if key.startswith("ACCELERATE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("HFTL_NUM_THREADS", raising=False)
    torch.set_num_threads(1)
    use_all_cpu_cores(world_size=1)
    assert torch.get_num_threads() == 1


def test_explicit_thread_count_wins(monkeypatch, restore_threads):
    monkeypatch.setenv("HFTL_NUM_THREADS", "1")
    use_all_cpu_cores(world_size=1)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(
    ("cores", "world_size", "workers"), [(2, 1, 1), (16, 1, 4), (16, 2, 4), (8, 2, 2), (1, 2, 1)]
)
def test_image_dataloader_workers_follow_the_cores(monkeypatch, cores, world_size, workers):
    from hftl.run import cpu as _runtime

    monkeypatch.setattr(_runtime, "available_cores", lambda: cores)
    assert _runtime.default_dataloader_workers(world_size) == workers


def test_explicit_dataloader_workers_are_kept():
    from hftl.options.config import HftlTrainingArguments

    assert HftlTrainingArguments(output_dir="x").auto_dataloader_workers
    explicit = HftlTrainingArguments(output_dir="x", dataloader_num_workers=0)
    assert not explicit.auto_dataloader_workers and explicit.dataloader_num_workers == 0


def test_length_grouping_reads_lengths_from_the_arrow_column(tiny_bert_dir, tmp_path, monkeypatch):
    rows = Dataset.from_dict({"input_ids": [[101] * (i % 7 + 2) for i in range(60)], "labels": [0] * 60})
    shuffled = rows.shuffle(seed=1)  # an indices mapping, as a carved split has
    expected = [len(ids) for ids in shuffled["input_ids"]]
    config = BertConfig(
        vocab_size=200, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8
    )
    trainer = HftlTrainer(
        model=BertForSequenceClassification(config),
        args=HftlTrainingArguments(
            output_dir=str(tmp_path), per_device_train_batch_size=4, eval_strategy="no", report_to=[]
        ),
        train_dataset=shuffled,
        processing_class=AutoTokenizer.from_pretrained(tiny_bert_dir),
    )

    def no_row_pass(self):
        raise AssertionError("the sampler read the dataset row by row")

    monkeypatch.setattr(Dataset, "__iter__", no_row_pass)
    sampler = trainer._get_train_sampler()
    assert sampler.lengths == expected and sampler.batch_size == 4
    sampler.set_epoch(1)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) == first and sorted(first) == list(range(60))
    sampler.set_epoch(2)
    assert list(sampler) != first


def test_length_grouped_batches_come_in_random_order_longest_first():
    """The stock sampler feeds each 50-batch megabatch longest to shortest, a curriculum that cost 4
    accuracy points on tweets after 40 steps; hftl keeps batches of similar length but shuffles their order."""
    from hftl.trainer import EpochSeededLengthGroupedSampler

    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 200, (1003,), generator=generator).tolist()
    indices = list(EpochSeededLengthGroupedSampler(8, lengths, seed=42))
    assert sorted(indices) == list(range(1003))
    batches = [indices[i : i + 8] for i in range(0, len(indices), 8)]
    longest = [max(lengths[i] for i in batch) for batch in batches]
    assert longest[0] == max(lengths)  # out-of-memory shows at the first step
    assert len(batches[-1]) == 1003 % 8  # the short remainder goes last
    first_megabatch = longest[1:50]
    assert first_megabatch != sorted(first_megabatch, reverse=True)  # no long-to-short curriculum
    spread = sorted(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches[1:-1])
    assert spread[len(spread) // 2] <= 10  # still grouped by length: little padding


def test_settings_resolved_for_this_machine_stay_out_of_the_rerun_config():
    """bf16, pinned memory and dataloader workers are resolved per machine: a hftl_config.yaml written on
    a CPU must not switch bf16 off when it reruns on a GPU, and rebuilding the arguments keeps them auto."""
    from hftl.options._collect import init_values
    from hftl.run.run_files import config_values

    args = HftlTrainingArguments(output_dir="x", learning_rate=1e-4)
    written = config_values((args,))
    assert written["learning_rate"] == 1e-4
    assert not {"bf16", "dataloader_num_workers"} & set(written)
    rebuilt = HftlTrainingArguments(**init_values(args))
    assert rebuilt.auto_dataloader_workers and "bf16" in rebuilt.machine_resolved
    explicit = HftlTrainingArguments(output_dir="x", bf16=False, dataloader_num_workers=2)
    assert {"bf16": False, "dataloader_num_workers": 2}.items() <= config_values((explicit,)).items()


@pytest.mark.parametrize("stopped", [False, True], ids=["finished", "stopped-by-sigterm"])
def test_an_image_run_leaves_no_dataloader_worker_alive(stopped, request, tmp_path, monkeypatch):
    """The run's persistent dataloader workers exit when finetune() returns or raises. Left to the garbage
    collector (often inside the next run's ``free_memory``), each took 5 s: the collector finalizes the
    worker's index queue (its feeder thread exits) before the iterator's ``__del__`` queues the stop signal,
    which then never reaches the worker, so torch waits out its join timeout and kills it."""
    import psutil

    from hftl import TrainingStopped, finetune

    before = {child.pid for child in psutil.Process().children(recursive=True)}
    options = dict(
        task="image-classification", model=request.getfixturevalue("tiny_resnet"),
        dataset=str(request.getfixturevalue("image_folder")), output_dir=str(tmp_path / "out"), augment="none", max_steps=4, per_device_train_batch_size=4, per_device_eval_batch_size=8,
        eval_strategy="steps", eval_steps=2, save_strategy="no", disable_tqdm=True,
    )  # fmt: skip
    if stopped:
        monkeypatch.setenv("HFTL_FAULT", "step@2")
        monkeypatch.setenv("HFTL_FAULT_SIGNAL", "TERM")
        with pytest.raises(TrainingStopped) as outcome:  # its traceback keeps the trainer alive
            finetune(**options)
    else:
        outcome = finetune(**options)  # the result keeps its trainer and the trainer's dataloaders
        args = outcome.trainer.args
        assert args.dataloader_num_workers >= 1 and args.dataloader_persistent_workers  # hftl's image default
    left = [child for child in psutil.Process().children(recursive=True) if child.pid not in before]
    assert not left, f"dataloader workers still alive after the run: {left}"
