"""The transfer-learning switches (freezing, discriminative learning rates, class weights, regularisation,
LR finder, hyperparameter search) as fields of :class:`hftl.HftlTrainingArguments`.

They live on the training arguments so that every entry point (command line, YAML, ``finetune(**kw)``)
takes them without new plumbing; each is validated before any compute (numeric ranges in
``hftl/options/checks.py``, the rest here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from ..errors import ConfigError
from ..run.sharding import on_cpu_only, sharding

__all__ = ["TechniqueOptions", "UNFREEZE_SCHEDULES", "CLASS_WEIGHT_MODES", "parse_weight_list"]

UNFREEZE_SCHEDULES = ("none", "head-first", "gradual")
CLASS_WEIGHT_MODES = ("none", "auto", "effective")
_STOCK_SAVE_STEPS = 500  # TrainingArguments' default: a save_strategy of steps with it was not chosen


@dataclass
class TechniqueOptions:
    """Transfer-learning switches; see ``docs/techniques.md``."""

    unfreeze_schedule: str = field(
        default="none",
        metadata={
            "help": "Gradual unfreezing (method full): none (everything trains from step 1), head-first "
            "(only the new head trains for --unfreeze_interval epochs, then everything) or gradual "
            "(head first, then one more layer from the top every --unfreeze_interval epochs).",
            "choices": list(UNFREEZE_SCHEDULES),
        },
    )
    unfreeze_interval: float = field(
        default=1.0,
        metadata={"help": "Epochs (fractions allowed) between unfreezing steps of --unfreeze_schedule."},
    )
    layer_decay: float | None = field(
        default=None,
        metadata={
            "help": "Layer-wise learning-rate decay in (0, 1], e.g. 0.75: what sits above the layer stack "
            "(pooler, final norm) trains at --learning_rate, the top layer at this factor times it, each "
            "layer below at this factor times the one above, the embeddings/stem lowest (factor^(L+1)); the "
            "new head at --head_learning_rate (off when unset)."
        },
    )
    fit_head: bool | None = field(
        default=None,
        metadata={
            "help": "Before training, solve the new head as a logistic regression on the pretrained model's "
            "features of the training rows, then train from it (auto: on for text classification with at "
            "most 2,000 training rows, where a random head wastes the few steps there are)."
        },
    )
    head_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the new classification head (default: --learning_rate)."},
    )
    class_weights: str = field(
        default="none",
        metadata={
            "help": "Loss weight per class: none, auto (inverse class frequency), effective (effective "
            "number of samples, beta 0.999) or a comma-separated list, one weight per label in label-id "
            "order. Multi-label: BCE pos_weight per class (auto: negatives/positives). Per-class counts "
            "are printed at start."
        },
    )
    dropout: float | None = field(
        default=None,
        metadata={
            "help": "Override the model's dropout probabilities (hidden, attention, classifier; timm "
            "drop_rate) with this value (default: the checkpoint's)."
        },
    )
    recalibrate_batchnorm: bool | None = field(
        default=None,
        metadata={
            "help": "After training, recompute the trained BatchNorm layers' running statistics with the "
            "final weights over up to 100 training batches (auto: on with --from_scratch, where the moving "
            "averages lag far behind the weights; off otherwise)."
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop after this many evaluations without improvement of --metric_for_best_model "
            "(default eval_loss) and restore the best checkpoint (off when unset). Sets "
            "--load_best_model_at_end; --save_strategy follows --eval_strategy unless set."
        },
    )
    early_stopping_threshold: float = field(
        default=0.0,
        metadata={"help": "Smallest change of the metric that counts as an improvement for early stopping."},
    )
    find_lr: bool = field(
        default=False,
        metadata={
            "help": "Run a learning-rate range test before training: writes lr_finder.png and .json to the "
            "output dir, restores the model, and trains with the suggested rate unless --learning_rate "
            "is given."
        },
    )
    find_lr_steps: int = field(
        default=100, metadata={"help": "Steps of the learning-rate range test (--find_lr), at least 10."}
    )
    hp_search: str | None = field(
        default=None,
        metadata={
            "help": "Hyperparameter search backend: optuna (pip install 'hftl[search]'). Searches learning "
            "rate, batch size, epochs (unless --max_steps is set), and the method's own options (lora: r, "
            "alpha, dropout; full: --unfreeze_schedule and --layer_decay).",
            "choices": ["optuna"],
        },
    )
    n_trials: int = field(
        default=10,
        metadata={
            "help": "Trials of --hp_search; trial 0 is the configuration as given, the others vary it."
        },
    )
    hp_space: str | None = field(
        default=None,
        metadata={
            "help": "YAML file changing the --hp_search space, one option a line: 'lora_r: [8, 16]' "
            "(choices), 'learning_rate: {low: 1.0e-5, high: 1.0e-3, log: true}' (a range) or "
            "'num_train_epochs: null' (not searched); options it leaves out keep the default space."
        },
    )

    def _check_sharded_switches(self) -> None:
        """Sharding (a flag or the accelerate config, hftl/run/sharding.py) needs an accelerator: on CPU
        Accelerate drops it and runs plain DDP. Unfreezing toggles requires_grad mid-run and the LR finder
        copies the whole state dict: neither works on sharded parameters. DDP must look for unused (frozen)
        parameters."""
        sharded = sharding(self)
        if sharded and on_cpu_only(self):
            raise ConfigError(
                f"{sharded} needs GPUs: on CPU Accelerate runs plain DDP instead, a whole copy of the model in "
                "every process; for a CPU run drop it (torchrun or accelerate launch without it is DDP)."
            )
        switches = {"--unfreeze_schedule": self.unfreeze_schedule != "none", "--find_lr": self.find_lr}
        for switch, on in switches.items():
            if on and sharded:
                raise ConfigError(f"{switch} doesn't work with {sharded} (sharded parameters); drop one.")
        if self.unfreeze_schedule != "none":
            if self.ddp_find_unused_parameters is False:
                raise ConfigError(
                    "--unfreeze_schedule leaves frozen layers without gradients, which DDP needs "
                    "--ddp_find_unused_parameters true for; drop --ddp_find_unused_parameters false."
                )
            self.ddp_find_unused_parameters = True

    def check_techniques(self) -> None:
        """Refuse impossible values in one line each (called from ``__post_init__``; the numeric ranges
        are checked before, from the table in ``hftl/options/checks.py``)."""
        if self.unfreeze_schedule not in UNFREEZE_SCHEDULES:
            raise ConfigError(
                f"--unfreeze_schedule must be one of {', '.join(UNFREEZE_SCHEDULES)} (got {self.unfreeze_schedule!r})."
            )
        # the count per label is checked once the labels are known
        self.class_weights = normalise_class_weights(self.class_weights)
        align_for_early_stopping(self)  # before TrainingArguments' own checks of the options it sets
        self._check_sharded_switches()
        if self.hp_space and not self.hp_search:
            raise ConfigError(
                "--hp_space describes a search space: add --hp_search optuna, or drop --hp_space."
            )


def parse_weight_list(spec) -> list[float] | None:
    """``--class_weights`` as a list of floats (``None`` for a named mode); refuse bad numbers in one line.
    Takes ``"1,2.5,3"``, ``"[1, 2.5, 3]"`` (a YAML list through the parser) or a Python list."""
    if isinstance(spec, (list, tuple)):
        spec = ",".join(str(value) for value in spec)
    spec = str(spec).strip()
    if spec.lower() in CLASS_WEIGHT_MODES:
        return None
    try:
        weights = [float(part) for part in spec.strip("[]()").split(",")]
    except ValueError:
        raise ConfigError(
            f"--class_weights must be none, auto, effective or a comma-separated list of numbers, one per label "
            f"(got {spec!r})."
        ) from None
    if not all(math.isfinite(w) and w > 0 for w in weights):
        raise ConfigError(f"--class_weights must all be positive numbers (got {spec!r}).")
    return weights


def normalise_class_weights(spec) -> str:
    """The option checked and written one way (``auto``, ``1,2.5,3``), so the saved config reruns as is."""
    weights = parse_weight_list(spec)
    return str(spec).strip().lower() if weights is None else ",".join(f"{w:g}" for w in weights)


def align_for_early_stopping(args) -> None:
    """Set ``load_best_model_at_end`` and a checkpoint at every evaluation for ``--early_stopping_patience``.

    Runs inside ``HftlTrainingArguments.__post_init__`` before the stock validation, which then sets
    ``metric_for_best_model`` (``loss`` unless given) and infers ``greater_is_better`` from its name.
    ``save_strategy`` left at its default follows ``eval_strategy``; one chosen to differ is refused.
    """
    if args.early_stopping_threshold < 0:
        raise ConfigError(
            f"--early_stopping_threshold must be zero or positive (got {args.early_stopping_threshold})."
        )
    if args.early_stopping_patience is None:
        if args.early_stopping_threshold:
            raise ConfigError(
                "--early_stopping_threshold only acts with --early_stopping_patience N; add it or drop the threshold."
            )
        return
    evaluation = IntervalStrategy(args.eval_strategy).value
    saving = SaveStrategy(args.save_strategy).value
    if evaluation == "no":
        raise ConfigError(
            "--early_stopping_patience compares evaluations, so it needs --eval_strategy epoch or steps (got no)."
        )
    every = args.eval_steps or args.logging_steps  # what stock validation makes of eval_steps
    note = None
    if (
        saving == "steps"
        and args.save_steps == _STOCK_SAVE_STEPS
        and (evaluation != "steps" or every != args.save_steps)
    ):
        args.save_strategy = evaluation
        if evaluation == "steps":
            args.save_steps = every
        note = f"save_strategy {evaluation}" + (f" every {every} steps" if evaluation == "steps" else "")
    elif saving == "best":
        pass  # saves exactly when the metric improves: what early stopping restores
    elif saving != evaluation or (evaluation == "steps" and args.save_steps % every):
        chosen = f"{saving}" + (f" every {args.save_steps} steps" if saving == "steps" else "")
        wanted = f"{evaluation}" + (f" every {every} steps" if evaluation == "steps" else "")
        raise ConfigError(
            f"--early_stopping_patience restores the best checkpoint, so one must be saved at each evaluation "
            f"({wanted}), but --save_strategy is {chosen}; drop --save_strategy/--save_steps (hftl matches them) "
            f"or use --save_strategy best."
        )
    args.load_best_model_at_end = True
    args.early_stopping_note = note  # said once at run time, not at every parse
