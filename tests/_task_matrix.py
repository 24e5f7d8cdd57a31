"""What ``test_task_method_matrix.py`` trains for each registered task: a tiny model and a tiny dataset.

``TASK_FIXTURES`` maps every task name to a builder, ``builder(root, request) -> TaskCase``: ``root`` is a
folder of its own to write data into, ``request`` the pytest request (for the session fixtures, e.g.
``request.getfixturevalue("tiny_bert_dir")``). A registered task without an entry fails the matrix: a new
task adds its builder here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from hftl import finetune

from .conftest import make_rows, write_csv
from .test_token_classification import ner_rows, write_jsonl

# every cell: two optimizer steps (LoRA's B starts at zero, so its A moves from the second), a checkpoint
# after the first that a second run resumes from
MATRIX_TRAINING = dict(
    max_steps=2, save_strategy="steps", save_steps=1, per_device_train_batch_size=4, per_device_eval_batch_size=8,
    logging_steps=1, eval_strategy="no", disable_tqdm=True, seed=3, learning_rate=1e-2,
)  # fmt: skip
RESUME_STEP = 1
TOPIC_SCORE = {"sport": 40.0, "politics": 55.0, "tech": 70.0}  # regression targets far from 0 and 1
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


@dataclass
class TaskCase:
    """One task's tiny run.

    Args:
        options: ``finetune`` keyword arguments: ``task``, ``model``, ``dataset`` and what the task needs
            (``label_column``, ``image_size``, ...); the matrix adds the method and training options.
        distill: Distillation's options besides ``teacher``: how the student is made (``student_layers``,
            or a separate student ``model`` where the teacher has no layer stack to cut).
        teacher_dir: The teacher: the ``full`` cell's output once it ran, else a ``full`` run of ``options``
            written here on first use.
    """

    options: dict
    distill: dict = field(default_factory=lambda: {"student_layers": 1})
    teacher_dir: Path | None = None

    def teacher(self) -> str:
        """An hftl output of this task to distill from (trained on first use)."""
        if not (self.teacher_dir / "config.json").is_file():
            finetune(
                **self.options, **{**MATRIX_TRAINING, "save_strategy": "no"}, output_dir=str(self.teacher_dir)
            )
        return str(self.teacher_dir)


def _split_folder(root: Path, rows_of, name: str) -> Path:
    """train/validation/test CSVs (24/6/6 rows): no carving, every cell sees the same rows."""
    folder = root / name
    for split, n, seed in (("train", 24, 0), ("validation", 6, 1), ("test", 6, 2)):
        write_csv(folder / f"{split}.csv", rows_of(n, seed))
    return folder


def _scored_rows(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {"text": row["text"], "score": round(TOPIC_SCORE[row["label"]] + float(rng.normal(0, 3)), 3)}
        for row in make_rows(n, seed)
    ]


def _image(colour, seed: int, size: int = 32) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(np.clip(np.array(colour) + rng.normal(0, 40, (size, size, 3)), 0, 255).astype("uint8"))


def text_classification(root: Path, request) -> TaskCase:
    folder = _split_folder(root, make_rows, "topics")
    return TaskCase({"task": "text-classification", "model": request.getfixturevalue("tiny_bert_dir"), "dataset": str(folder)})


def text_regression(root: Path, request) -> TaskCase:
    folder = _split_folder(root, _scored_rows, "scores")
    options = {"task": "text-regression", "model": request.getfixturevalue("tiny_bert_dir"), "dataset": str(folder),
               "label_column": "score"}  # fmt: skip
    return TaskCase(options)


def image_classification(root: Path, request) -> TaskCase:
    """A ViT on train/ and test/ folders of noisy colour photos, one subfolder per colour."""
    for split, count, seed in (("train", 24, 0), ("test", 6, 1000)):
        for index in range(count):
            name = list(COLOURS)[index % 3]
            (root / "photos" / split / name).mkdir(parents=True, exist_ok=True)
            _image(COLOURS[name], seed + index).save(root / "photos" / split / name / f"{index}.png")
    options = {"task": "image-classification", "model": request.getfixturevalue("tiny_vit"),
               "dataset": str(root / "photos"), "image_size": 32, "augment": "none", "dataloader_num_workers": 0}  # fmt: skip
    return TaskCase(options)


def image_regression(root: Path, request) -> TaskCase:
    """A CNN (BatchNorm statistics) on a CSV of image paths and their brightness."""
    (root / "img").mkdir(parents=True)
    rng, rows = np.random.default_rng(0), []
    for index in range(36):
        brightness = float(rng.uniform(20, 235))
        _image((brightness,) * 3, index).save(root / "img" / f"{index}.png")
        rows.append({"image": f"img/{index}.png", "brightness": round(brightness, 2)})
    options = {"task": "image-regression", "model": request.getfixturevalue("tiny_resnet"),
               "dataset": str(write_csv(root / "brightness.csv", rows)), "label_column": "brightness",
               "image_size": 32, "augment": "none", "dataloader_num_workers": 0}  # fmt: skip
    # a ResNet has stages, not a stack of like layers to cut: the student is a separate, untrained CNN
    return TaskCase(options, distill={"model": options["model"]})


def token_classification(root: Path, request) -> TaskCase:
    """JSONL word lists and IOB2 tags (people, places); the student is the tiny BERT cut to one layer."""
    for split, n, seed in (("train", 24, 0), ("validation", 6, 1), ("test", 6, 2)):
        write_jsonl(root / "ner" / f"{split}.jsonl", ner_rows(n, seed))
    options = {"task": "token-classification", "model": request.getfixturevalue("tiny_bert_dir"),
               "dataset": str(root / "ner")}  # fmt: skip
    return TaskCase(options)


TASK_FIXTURES = {
    "text-classification": text_classification,
    "image-classification": image_classification,
    "text-regression": text_regression,
    "image-regression": image_regression,
    "token-classification": token_classification,
}
