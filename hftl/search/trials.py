"""``--hp_search optuna``: every trial is a plain :func:`hftl.finetune` run in a folder of its own.

Optuna drives the trials directly (ask and tell) rather than through ``Trainer.hyperparameter_search``,
which rebuilds the model with ``model_init`` and breaks on peft models (transformers#29391). A whole
``finetune()`` per trial behaves the same for every method, LoRA included.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import os
import shutil
import time
import traceback
from pathlib import Path

import yaml

from .._log import is_main_process, log
from ..errors import ConfigError, HftlError, TrainingStopped, first_line
from ..hub.publish import check_run_can_push, push_run
from ..pipeline import run_finetuning
from ..run.output_dir import prepare_output_dir
from ..run.run_files import config_values
from ..tasks import get_task
from ..trainer import NonFiniteLossError
from .space import baseline, centers, owners, read_space_file, search_space, trial_arguments

__all__ = ["run_search", "SEARCH_DIR", "TRIALS_DIR", "INSTALL_HINT"]

SEARCH_DIR = "hp_search"  # trials.csv, trials.md, best_config.yaml, logs/
TRIALS_DIR = "trials"  # trial-<n>/: one finetune() output folder per trial
INSTALL_HINT = "--hp_search optuna needs optuna, which is not installed: pip install 'hftl[search]' (or pip install optuna)."


def _objective(task, training_args) -> tuple[tuple[str, ...], str]:
    """The metric keys to read (the first one present wins) and the direction."""
    metric = training_args.metric_for_best_model
    if not metric:  # the task's headline metric (for classification: accuracy, or multi-label micro-F1)
        return tuple(f"eval_{name}" for name in task.headline_metrics()), "maximize"
    name = metric.removeprefix("eval_")
    known = task.metric_names()  # every name a run of this task reports
    if name not in known:
        raise ConfigError(
            f"--metric_for_best_model {metric} is not a validation metric hftl computes; --hp_search needs one "
            f"of {', '.join(known)}."
        )
    greater = training_args.greater_is_better
    if greater is None or greater == (not metric.endswith("loss")):  # not given: the name's direction, as
        greater = task.greater_is_better(name)  # the task knows it (transformers guesses from "loss" alone)
    return (f"eval_{name}",), "maximize" if greater else "minimize"


def _preflight(arguments: tuple) -> tuple[list, tuple[str, ...], str, Path]:
    """Every check before the first trial: options, the space (each edge value validated), the folder."""
    training_args = arguments[3]
    if training_args.resume_from_checkpoint:
        raise ConfigError("--hp_search starts fresh trials and can't resume; drop --resume_from_checkpoint.")
    if training_args.push_to_hub:  # the best trial is pushed at the end, no trial on its own
        check_run_can_push(training_args)
    keys, direction = _objective(get_task(arguments[0].task), training_args)
    space = search_space(arguments)
    if training_args.hp_space:
        space = read_space_file(training_args.hp_space, space, list(owners(arguments)))
    if not space:
        raise ConfigError(
            f"--hp_space {training_args.hp_space} leaves nothing to search; give at least one option."
        )
    for dim in space:  # a bad value in a space file fails now, not in trial 7
        for value in dim.edge_values():
            trial_arguments(arguments, {dim.name: value})
    root = Path(prepare_output_dir(training_args, f"{arguments[2].method}-search", resuming=False))
    if (root / SEARCH_DIR / "trials.csv").exists():  # not just logs of a search that bad input stopped
        if not training_args.overwrite_output_dir:
            raise ConfigError(
                f"--output_dir {root} already holds a hyperparameter search; pass a new --output_dir, or "
                "--overwrite_output_dir to replace it."
            )
        shutil.rmtree(root / SEARCH_DIR, ignore_errors=True)
        shutil.rmtree(root / TRIALS_DIR, ignore_errors=True)
    return space, keys, direction, root


@contextlib.contextmanager
def _quiet(log_file: Path):
    """A trial's console output (Trainer's log dicts, hftl's lines, warnings, tracebacks) goes to its log
    file, so the console shows one line per trial."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    target = log_file if is_main_process() else os.devnull
    with open(target, "w") as stream, contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        transformers.logging.set_verbosity_error()  # its handler holds the real stderr
        try:
            yield
        except Exception:
            traceback.print_exc()
            raise
        finally:
            transformers.logging.set_verbosity(verbosity)


def _release(kept=None) -> None:
    """Free what finished trials hold on the accelerator; ``kept`` (the best so far) stays, parked on the CPU
    without its optimizer (Trainer prepares the model again on its next evaluate or predict)."""
    if kept is not None:
        kept.trainer.accelerator.free_memory()
        kept.trainer.optimizer = kept.trainer.lr_scheduler = None
        kept.trainer.model.to("cpu")
    import torch

    if torch.cuda.is_available():  # on the CPU the automatic collection suffices (a full one costs ~1 s)
        gc.collect()
        torch.cuda.empty_cache()


def _show(params: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _write_tables(folder: Path, records: list[dict], metric: str, best: int | None) -> None:
    """trials.csv (every value) and trials.md (a table for people), rewritten after every trial."""
    names = list(dict.fromkeys(name for record in records for name in record["params"]))
    with open(folder / "trials.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "state", metric, "runtime_s", *names, "output_dir", "error"])
        for r in records:
            params = [r["params"].get(name, "") for name in names]
            value = "" if r["value"] is None else r["value"]
            writer.writerow(
                [r["trial"], r["state"], value, f"{r['runtime']:.1f}", *params, r["output"], r["error"]]
            )
    lines = [f"| trial | params | {metric} | runtime | state |", "|---:|---|---:|---:|---|"]
    for r in records:
        value = "" if r["value"] is None else f"{r['value']:.4f}"
        state = "**best**" if r["trial"] == best else r["state"].lower()
        state += f": {r['error']}" if r["error"] else ""
        lines.append(f"| {r['trial']} | {_show(r['params'])} | {value} | {r['runtime']:.0f} s | {state} |")
    (folder / "trials.md").write_text("\n".join(lines) + "\n")


def _run_trial(run, arguments: tuple, params: dict, out: Path, log_file: Path, callbacks):
    """One finetune() run: ``(result, None)``, or ``(None, error)`` for a failure that isn't the user's."""
    fixed = dict(hp_search=None, hp_space=None, output_dir=str(out), push_to_hub=False, disable_tqdm=True)
    trial_args = trial_arguments(arguments, {**params, **fixed})
    try:
        with _quiet(log_file):
            return run(*trial_args, callbacks=callbacks), None
    except NonFiniteLossError as error:  # e.g. a learning rate too high: that trial failed, not the search
        return None, str(error).split(";")[0]
    except HftlError:  # bad input (ConfigError, DataError, ...) or a stop signal: the user's, at once
        raise
    except Exception as error:  # e.g. out of memory at a large batch size
        return None, f"{type(error).__name__}: {first_line(error)[:120]}"


def run_search(arguments: tuple, callbacks=None):
    """Run ``n_trials`` finetune() trials proposed by optuna's TPE sampler seeded with ``seed``; return the
    best trial's :class:`hftl.FinetuneResult` (its model stays in its trial folder) with ``search_dir``."""
    training_args = arguments[3]
    space, keys, direction, root = _preflight(arguments)  # bad input first, then the missing package
    try:
        import optuna
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    folder, trials_dir = root / SEARCH_DIR, root / TRIALS_DIR
    n_trials, epochs = training_args.n_trials, centers(arguments)[1]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # hftl prints one line per trial instead
    sampler = optuna.samplers.TPESampler(
        seed=training_args.seed, n_startup_trials=min(10, max(2, n_trials // 2))
    )
    study = optuna.create_study(direction=direction, sampler=sampler)
    study.enqueue_trial(baseline(arguments, space))  # trial 0 as configured: the search never does worse
    log(
        f"hyperparameter search: {n_trials} trials, {direction} {keys[0]} over {', '.join(d.name for d in space)}"
    )
    records: list[dict] = []
    best, best_result, metric = None, None, keys[0]
    try:
        for _ in range(n_trials):
            trial = study.ask()
            params = {}
            for dim in space:
                short = params.get("num_train_epochs", epochs) <= training_args.unfreeze_interval
                if dim.name == "unfreeze_schedule" and short:
                    continue  # head-first would never unfreeze in so short a run
                params[dim.name] = dim.suggest(trial)
            out, log_file = (
                trials_dir / f"trial-{trial.number}",
                folder / "logs" / f"trial-{trial.number}.log",
            )
            start = time.perf_counter()
            try:
                result, error = _run_trial(run_finetuning, arguments, params, out, log_file, callbacks)
            except (
                ConfigError
            ) as error:  # a searched value this model or method can't take: say how to skip it
                tried = [name for name in params if f"--{name} " in f"{error} " and trial.number > 0]
                if not tried:
                    raise
                raise ConfigError(
                    f"{error} (trial {trial.number} tried {tried[0]}={params[tried[0]]}; leave it out of the search "
                    f"with an --hp_space file holding '{tried[0]}: null')"
                ) from None
            except TrainingStopped as stop:
                raise TrainingStopped(
                    f"{str(stop).split(';')[0]} in trial {trial.number} of the search; {folder / 'trials.md'} lists "
                    "the finished trials. A search starts afresh: rerun with a new --output_dir.",
                    signal_number=stop.exit_status - 128,
                ) from None
            record = dict(
                trial=trial.number, params=params, value=None, state="FAIL", output=str(out), error=error
            )
            record["runtime"] = time.perf_counter() - start
            if result is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                log(f"trial {trial.number} failed: {error} (log: {log_file})")
            else:
                metric = next((key for key in keys if key in result.metrics), None)
                if metric is None:
                    raise ConfigError(
                        f"The trials report no {keys[0]}; set --metric_for_best_model to one they do."
                    )
                record.update(value=float(result.metrics[metric]), state="COMPLETE", error="")
                study.tell(trial, record["value"])
                log(
                    f"trial {trial.number} ({trial.number + 1}/{n_trials}): {_show(params)} -> {metric} "
                    f"{record['value']:.4f} in {record['runtime']:.0f} s"
                )
                if study.best_trial.number == trial.number:
                    best, best_result = trial.number, result
            del result
            _release(best_result)
            records.append(record)
            if is_main_process():
                _write_tables(folder, records, metric, best)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if best_result is None:
        raise HftlError(
            f"All {n_trials} trials failed; their errors are in {folder / 'trials.md'} and {folder / 'logs'}."
        )
    return _finish(arguments, records[best], best_result, folder, metric)


def _finish(arguments: tuple, record: dict, result, folder: Path, metric: str):
    """best_config.yaml (every option of the best trial, for --config), the log line, and the push."""
    training_args = arguments[3]
    best_args = trial_arguments(
        arguments, {**record["params"], "hp_search": None, "hp_space": None, "output_dir": None}
    )
    dropped = {"output_dir", "n_trials", "hp_space"}
    if training_args.auto_dataloader_workers:
        dropped.add("dataloader_num_workers")  # stays on auto
    values = {key: value for key, value in config_values(best_args).items() if key not in dropped}
    config = folder / "best_config.yaml"
    if is_main_process():
        header = (
            f"# The best trial of --hp_search: trial {record['trial']}, {metric} {record['value']:.4f}; its model is "
            f"in {record['output']}.\n# Train it again with: --config {config} --output_dir NEW_DIR\n"
        )
        config.write_text(header + yaml.safe_dump(values, sort_keys=False))
    # later TrainingArguments reset accelerate's shared state under the kept trainer's Accelerator; a new
    # one (as Trainer.hyperparameter_search makes per trial) lets it evaluate and predict again
    result.trainer.create_accelerator_and_postprocess()
    result.trainer.model.to(result.trainer.args.device)  # back from where _release parked it
    result.search_dir = folder
    log(
        f"best trial {record['trial']} ({metric} {record['value']:.4f}): {_show(record['params'])}; model in "
        f"{result.output_dir}; all trials in {folder / 'trials.md'}; its options in {config}"
    )
    if training_args.push_to_hub and result.trainer.is_world_process_zero():
        push_run(result.output_dir, training_args)
    return result
