"""Model outputs as output rows: each input row's id, predicted label(s), score and (``all_scores``) every
class probability; regression values in the targets' units; token tags per word with entity groups. And
writing them as CSV or JSONL."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import torch

from ..data.labels import LabelSpace

__all__ = ["classification_records", "regression_records", "token_records", "entity_groups", "render"]

_SEP = ";"  # between several labels (multi-label) in one CSV cell


def _softmax(logits: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1).numpy()


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return torch.sigmoid(torch.as_tensor(logits, dtype=torch.float64)).numpy()


def classification_records(logits: np.ndarray, labels: LabelSpace, threshold: float | None, all_scores: bool):
    """One record per row: ``label`` and ``score`` (single-label: the top class and its probability;
    multi-label: every class at or above ``threshold``, each with its probability), ``scores`` per class."""
    names = labels.names
    probabilities = _sigmoid(logits) if labels.multi_label else _softmax(logits)
    records = []
    for row in probabilities:
        if labels.multi_label:
            chosen = [index for index in np.argsort(-row) if row[index] >= threshold]
            record = {"label": [names[i] for i in chosen], "score": [float(row[i]) for i in chosen]}
        else:
            top = int(row.argmax())
            record = {"label": names[top], "score": float(row[top])}
        if all_scores:
            record["scores"] = {name: float(value) for name, value in zip(names, row, strict=True)}
        records.append(record)
    return records


def regression_records(logits: np.ndarray, labels: LabelSpace):
    """One record per row: each target's value (the head gives the targets' own units)."""
    values = np.asarray(logits, dtype=np.float64).reshape(len(logits), -1)
    return [{name: float(value) for name, value in zip(labels.names, row, strict=True)} for row in values]


def entity_groups(words: list[str], tags: list[str], scores: list[float]) -> list[dict]:
    """Entities from per-word IOB2/BIOES tags: a ``B-``/``S-`` tag (or a tag of another type) opens one,
    ``I-``/``E-`` of the same type continue it, ``O`` closes it."""
    groups, current = [], None
    for index, (word, tag, score) in enumerate(zip(words, tags, scores, strict=True)):
        prefix, kind = (tag[:1], tag[2:]) if tag[1:2] == "-" else ("O", "")
        continues = current is not None and prefix in ("I", "E", "L") and kind == current["entity"]
        if prefix == "O" or not kind:
            current = None
            continue
        if not continues:
            current = {"entity": kind, "words": [], "start": index, "end": index, "scores": []}
            groups.append(current)
        current["words"].append(word)
        current["scores"].append(score)
        current["end"] = index + 1
        if prefix in ("E", "L", "S", "U"):
            current = None
    return [
        {"entity": g["entity"], "word": " ".join(g["words"]), "start": g["start"], "end": g["end"],
         "score": float(np.mean(g["scores"]))}
        for g in groups
    ]  # fmt: skip


def token_records(logits: np.ndarray, word_marks: np.ndarray, words: list[list[str]], labels: LabelSpace,
                  all_scores: bool):  # fmt: skip
    """One record per sentence: its words, each word's tag and probability (the first subword's, as
    training scored it; words cut off by max_length get no tag), and the entity groups."""
    records = []
    for row, marks, sentence in zip(logits, word_marks, words, strict=True):
        first = np.flatnonzero(marks != -100)
        probabilities = _softmax(row[first])
        ids = probabilities.argmax(-1)
        tags = [labels.names[i] for i in ids] + [""] * (len(sentence) - len(ids))
        scores = [float(p[i]) for p, i in zip(probabilities, ids, strict=True)]
        record = {
            "words": sentence,
            "tags": tags,
            "entities": entity_groups(sentence[: len(ids)], tags[: len(ids)], scores),
            "score": scores,
        }
        if all_scores:
            record["scores"] = [dict(zip(labels.names, map(float, p), strict=True)) for p in probabilities]
        records.append(record)
    return records


def _cell(key: str, value) -> str:
    """A CSV cell: words and tags joined by spaces, other lists (several labels, their scores) by ``;``,
    entity groups as ``type: words``."""
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return f"{_SEP} ".join(f"{item['entity']}: {item['word']}" for item in value)
        return (" " if key in ("words", "tags") else _SEP).join(str(item) for item in value)
    return "" if value is None else str(value)


def render(rows: list[dict], fmt: str) -> str:
    """``rows`` as CSV (``scores`` spread over ``score_<class>`` columns; lists joined) or JSONL."""
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    flat = []
    for row in rows:
        out = {key: value for key, value in row.items() if key != "scores"}
        for name, value in (row.get("scores") or {}).items() if isinstance(row.get("scores"), dict) else ():
            out[f"score_{name}"] = value
        flat.append(out)
    columns = list(dict.fromkeys(key for row in flat for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: _cell(key, row.get(key)) for key in columns} for row in flat)
    return buffer.getvalue()
