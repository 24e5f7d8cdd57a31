"""A plain transformers.Trainer script for BBC News + MiniLM: the baseline hftl is compared against.

Usage: python benchmarks/plain_trainer_text.py [--max_length 128] [--lr 2e-4] [--seed 42] [--train_size N]
It uses hftl only to read the same offline splits, so both sides train and test on identical data.
"""

import argparse
import time

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from hftl.data.builtin import load_bbc_news
from hftl.resolve import resolve_model

parser = argparse.ArgumentParser()
parser.add_argument("--max_length", type=int, default=128)
parser.add_argument("--lr", type=float, default=2e-4)
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--train_size", type=int, default=None)
parser.add_argument("--batch_size", type=int, default=16)
args = parser.parse_args()

start = time.time()
path = resolve_model("sentence-transformers/all-MiniLM-L6-v2").path
splits = load_bbc_news()
if args.train_size:
    splits["train"] = splits["train"].shuffle(seed=0).select(range(args.train_size))
names = splits["train"].features["label"].names
tokenizer = AutoTokenizer.from_pretrained(path)
tokenized = splits.map(
    lambda b: tokenizer(b["text"], truncation=True, max_length=args.max_length), batched=True
)
model = AutoModelForSequenceClassification.from_pretrained(
    path, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
)
training_args = TrainingArguments(
    output_dir="/tmp/plain_trainer_text",
    learning_rate=args.lr,
    num_train_epochs=1,
    per_device_train_batch_size=args.batch_size,
    seed=args.seed,
    save_strategy="no",
    report_to="none",
    logging_steps=20,
)
trainer = Trainer(
    model=model,
    args=training_args,
    train_dataset=tokenized["train"],
    data_collator=DataCollatorWithPadding(tokenizer),
)
train_start = time.time()
trainer.train()
train_time = time.time() - train_start
pred = trainer.predict(tokenized["test"])
accuracy = float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())
print(
    f"RESULT max_length={args.max_length} lr={args.lr} seed={args.seed} train={len(tokenized['train'])} "
    f"test_accuracy={accuracy:.4f} train_s={train_time:.1f} total_s={time.time() - start:.1f} threads={torch.get_num_threads()}"
)
