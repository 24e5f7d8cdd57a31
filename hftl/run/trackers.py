"""``--report_to tensorboard|trackio|mlflow|wandb``: what hftl adds to Trainer's tracker integrations.

Trainer's own integration callbacks do the logging (loss curve, evaluations, its arguments and the model
config). hftl adds two things through those callbacks' own objects, from one :class:`TrackerCallback`:

- at the start of training, the run's options as ``hftl_config.yaml`` records them (model, dataset,
  method, every setting changed from hftl's defaults; never a token), flat, as ``hftl/<option>``;
- at the end, the final ``test_*`` metrics. Trainer sends ``trainer.predict``'s metrics only to trackers
  whose callback has ``on_predict`` (wandb, trackio) and trackio's callback has finished its run by then,
  so it would open a new one: hftl resumes the run for the test split, and logs the test metrics (and
  TensorBoard's HParams entry) to TensorBoard and MLflow itself.

TensorBoard's event files (``output_dir/runs/<date>_<host>/``) are outputs of the run: listed in
``hftl_outputs.json`` (so ``--overwrite_output_dir`` removes them), never pushed (push takes safetensors,
JSON, YAML, text, Markdown and PNG files only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.integrations import MLflowCallback, TensorBoardCallback, TrackioCallback, WandbCallback
from transformers.integrations.integration_utils import rewrite_logs

from .run_files import config_values, plain_path

__all__ = ["TrackerCallback", "add_trackers", "log_test_metrics", "without_tracker_logs"]

_INTEGRATIONS = (TensorBoardCallback, TrackioCallback, MLflowCallback, WandbCallback)
PREFIX = "hftl/"


def _integration(callbacks, kind: type):
    return next((callback for callback in callbacks if isinstance(callback, kind)), None)


class TrackerCallback(TrainerCallback):
    """Sends hftl's resolved options and final test metrics to the trackers ``--report_to`` names, through
    Trainer's integration callbacks (``integrations``, found in the same Trainer).

    Args:
        integrations: Trainer's integration callbacks for ``report_to``.
        arguments: The run's four argument dataclasses (as resolved by the plan).
        recorded: Training options to record as given rather than as the run used them (as for
            :func:`hftl.run.run_files.config_values`).

    Example:
        >>> callback = TrackerCallback(trainer.callback_handler.callbacks, plan.arguments)
        >>> trainer.add_callback(callback)
    """

    def __init__(self, integrations, arguments: tuple, recorded: dict | None = None):
        self.tensorboard = _integration(integrations, TensorBoardCallback)
        self.trackio = _integration(integrations, TrackioCallback)
        self.mlflow = _integration(integrations, MLflowCallback)
        self.wandb = _integration(integrations, WandbCallback)
        self.arguments, self.recorded = arguments, recorded
        self._trackio_run: str | None = None
        self._mlflow_run: str | None = None
        # a run the user started before finetune() stays theirs to finish
        self._owns_wandb_run = self.wandb is not None and self.wandb._wandb.run is None

    def config(self) -> dict[str, Any]:
        """The options ``hftl_config.yaml`` records, as ``{"hftl/<option>": value}``."""
        return {PREFIX + key: value for key, value in config_values(self.arguments, self.recorded).items()}

    def on_train_begin(self, args, state, control, **kwargs):
        # runs after the integrations' own on_train_begin (Trainer's callbacks come first), which set up the run
        if not state.is_world_process_zero:
            return
        config = self.config()
        if self.tensorboard is not None and self.tensorboard.tb_writer is not None:
            rows = "".join(f"| {key} | {value} |\n" for key, value in config.items())
            self.tensorboard.tb_writer.add_text("hftl/config", "| option | value |\n|---|---|\n" + rows)
        if self.trackio is not None and self.trackio._initialized:
            self.trackio._trackio.config.update(config, allow_val_change=True)
            self._trackio_run = self.trackio._trackio.context_vars.current_run.get().name
        if self.mlflow is not None and self.mlflow._initialized:
            mlflow = self.mlflow._ml_flow
            limit = self.mlflow._MAX_PARAM_VAL_LENGTH
            params = {key: str(value)[:limit] for key, value in config.items()}
            mlflow.log_params(params)
            self._mlflow_run = mlflow.active_run().info.run_id
        if self.wandb is not None and self.wandb._initialized:
            self.wandb._wandb.config.update(config, allow_val_change=True)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        # trackio's callback has just finished its run: resume it (by name) for the evaluations and the test
        # split still to come, before anything logs there (a resumed run's first log records its config)
        callback = self.trackio
        if (
            not state.is_world_process_zero
            or callback is None
            or callback._initialized
            or not self._trackio_run
            or callback._space_id  # a Space is frozen at the end of training: nothing more can go there
        ):
            return
        run_name, args.run_name = args.run_name, self._trackio_run
        try:
            callback.setup(args, state, model)
        finally:
            args.run_name = run_name
        callback._trackio.config.update(self.config(), allow_val_change=True)

    def finish(self, args, state, control, metrics: dict, model=None) -> None:
        """Log the final ``test_*`` metrics where Trainer sent none, add TensorBoard's HParams entry, and end
        the tracker runs this run started."""
        if not state.is_world_process_zero:
            return
        test = {
            key: value
            for key, value in metrics.items()
            if key.startswith("test_") and isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        tensorboard = self.tensorboard
        if tensorboard is not None and tensorboard.logging_dir:  # set when training began
            tensorboard.on_log(args, state, control, logs=test)  # reopens its writer (closed at train end)
            _hparams(tensorboard.tb_writer, self.config(), rewrite_logs(test), state.global_step)
            tensorboard.on_train_end(args, state, control)  # closes it
        if self.mlflow is not None and self._mlflow_run:
            mlflow = self.mlflow._ml_flow
            active = mlflow.active_run()
            reopened = active is None or active.info.run_id != self._mlflow_run
            if reopened:  # its callback ended the run at the end of training (nested under yours: still so)
                mlflow.start_run(run_id=self._mlflow_run, nested=active is not None)
            self.mlflow.on_log(args, state, control, logs=test)
            if reopened:
                mlflow.end_run()
        if self.trackio is not None and self.trackio._initialized and not self.trackio._space_id:
            self.trackio.on_train_end(args, state, control, model=model)  # trackio.finish()
        if self.wandb is not None and self.wandb._initialized and self._owns_wandb_run:
            self.wandb._wandb.finish()
            # as its callback does between search trials: a later trainer.evaluate() starts a new run
            self.wandb._initialized = False


def _hparams(writer, config: dict, metrics: dict, step: int) -> None:
    """TensorBoard's HParams entry (the options against the test metrics) in ``writer``'s own file."""
    from torch.utils.tensorboard.summary import hparams  # needs tensorboard, as --report_to tensorboard does

    shown = {
        key: value if isinstance(value, (bool, int, float, str)) else str(value)
        for key, value in config.items()
    }
    for summary in hparams(shown, metrics):
        writer.file_writer.add_summary(summary, step)


def add_trackers(trainer, plan) -> TrackerCallback | None:
    """Add a :class:`TrackerCallback` when ``--report_to`` names trackers.

    Args:
        trainer: The run's Trainer, built with ``plan.training_args`` (its integration callbacks in place).
        plan: The run's :class:`hftl.plan.RunPlan`; its options are logged with the push as asked.

    Example:
        >>> add_trackers(trainer, plan)
    """
    if not trainer.args.report_to:
        return None
    callbacks = trainer.callback_handler.callbacks
    if not any(isinstance(callback, _INTEGRATIONS) for callback in callbacks):
        return None
    callback = TrackerCallback(callbacks, plan.arguments, {"push_to_hub": plan.push_to_hub})
    trainer.add_callback(callback)
    return callback


def log_test_metrics(trainer, metrics: dict) -> None:
    """Send the run's final ``test_*`` metrics to its trackers and end their runs (after ``trainer.predict``
    on the test split); nothing without ``--report_to``.

    Args:
        trainer: The run's Trainer (:func:`add_trackers` added its callback).
        metrics: The run's metrics; the numeric ``test_*`` ones are logged.

    Example:
        >>> log_test_metrics(trainer, {"test_accuracy": 0.97, "test_loss": 0.1})
    """
    callback = _integration(trainer.callback_handler.callbacks, TrackerCallback)
    if callback is not None:
        callback.finish(trainer.args, trainer.state, trainer.control, metrics, model=trainer.model)


def without_tracker_logs(snapshot: dict, trainer, output_dir: str | Path) -> dict:
    """``snapshot`` (:func:`hftl.run.run_files.snapshot_files`) without the files this run's TensorBoard
    writer put under ``output_dir``, so ``hftl_outputs.json`` lists them as the run's (they are written
    during training, before the snapshot the list is taken against).

    Args:
        snapshot: The output folder's files before the model is saved.
        trainer: The run's Trainer.
        output_dir: The run's output folder (event files elsewhere, via ``TENSORBOARD_LOGGING_DIR``, stay out).

    Example:
        >>> written_before = without_tracker_logs(snapshot_files(output_dir), trainer, output_dir)
    """
    callback = _integration(trainer.callback_handler.callbacks, TrackerCallback)
    tensorboard = callback.tensorboard if callback is not None else None
    if tensorboard is None or not tensorboard.logging_dir:
        return snapshot
    folder = Path(output_dir).absolute()
    logs = Path(tensorboard.logging_dir).absolute()
    if not logs.is_relative_to(folder):  # TENSORBOARD_LOGGING_DIR elsewhere: not this folder's files
        return snapshot
    prefix = os.path.relpath(logs, folder)
    if not plain_path(folder, prefix):
        return snapshot
    return {
        name: state for name, state in snapshot.items() if not name.startswith(f"{Path(prefix).as_posix()}/")
    }
