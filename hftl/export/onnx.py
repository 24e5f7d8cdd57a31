"""A PyTorch classifier to ONNX: ``torch.onnx.export`` (the torch.export-based exporter, ``dynamo=True``)
with a dynamic batch axis (and sequence axis for text), and onnxruntime's dynamic int8 quantisation.

optimum-onnx is not used: its releases pin ``transformers<4.58`` and hftl runs on transformers 5.
onnx, onnxruntime and onnxscript are the ``export`` extra, so they are imported where they are used.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import logging
import re
import warnings
from pathlib import Path

import torch
from PIL import Image
from transformers import PreTrainedModel

from ..errors import ConfigError, first_line
from ._errors import ExportError

__all__ = [
    "OPSET",
    "EXPORT_PACKAGES",
    "require_export_packages",
    "example_inputs",
    "export_onnx",
    "quantize_int8",
]

# ONNX opset of the exported graph: the torch.export-based exporter's default in torch 2.9+, which
# onnxruntime >= 1.18 runs
OPSET = 18
EXPORT_PACKAGES = ("onnx", "onnxruntime", "onnxscript")
# example sizes the graph is traced with: 2, not 1, so torch.export keeps the axes symbolic (it
# specialises sizes 0 and 1)
_EXAMPLE_BATCH, _EXAMPLE_LENGTH = 2, 8
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the exporter colours its messages


def require_export_packages() -> None:
    """Refuse in one line when an ONNX package is missing.

    Example:
        >>> require_export_packages()  # returns None when onnx, onnxruntime and onnxscript import
    """
    for name in EXPORT_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ConfigError(
                f"hftl export needs {', '.join(EXPORT_PACKAGES)} ({name} is not installed): pip install 'hftl[export]'"
            ) from None


def example_inputs(model: PreTrainedModel, processor, modality: str) -> dict[str, torch.Tensor]:
    """Inputs to trace ``model`` with: a padded batch of two texts, or two blank images through the
    model's own image processor, keeping only the keys its ``forward`` takes.

    Args:
        model: The classifier, in eval mode.
        processor: Its tokenizer (text) or image processor (image).
        modality: ``"text"`` or ``"image"``.

    Example:
        >>> inputs = example_inputs(model, tokenizer, "text")  # {"input_ids": ..., "attention_mask": ...}
    """
    if modality == "text":
        encoded = processor(
            ["an example", "an example text"],
            padding="max_length",
            max_length=_EXAMPLE_LENGTH,
            truncation=True,
            return_tensors="pt",
        )
    else:
        blank = Image.new("RGB", (64, 64), (128, 128, 128))
        encoded = processor(images=[blank] * _EXAMPLE_BATCH, return_tensors="pt")
    accepted = inspect.signature(model.forward).parameters
    return {key: value for key, value in encoded.items() if key in accepted}


def export_onnx(
    model: PreTrainedModel, inputs: dict[str, torch.Tensor], path: str | Path, *, opset: int = OPSET
) -> None:
    """Write ``model`` as one ONNX file (no external data), outputs ``logits``, batch axis dynamic and, for
    2-D inputs (token ids), the sequence axis too.

    Args:
        model: The classifier; exported in eval mode on the CPU, in float32.
        inputs: Example inputs by name (:func:`example_inputs`): their names become the graph's inputs.
        path: The ``.onnx`` file to write.
        opset: The ONNX opset.

    Example:
        >>> export_onnx(model, example_inputs(model, tokenizer, "text"), "out/model.onnx")
    """
    model = model.to("cpu", torch.float32).eval()
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    shapes = {
        name: {0: batch, 1: sequence} if value.dim() == 2 else {0: batch} for name, value in inputs.items()
    }
    quiet = io.StringIO()
    try:
        # the exporter prints its progress and logs its fallbacks: kept for the error, not shown
        with (
            contextlib.redirect_stdout(quiet),
            contextlib.redirect_stderr(quiet),
            _quiet_logging(),
            warnings.catch_warnings(),
            torch.no_grad(),
        ):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (),
                str(path),
                kwargs=inputs,
                input_names=list(inputs),
                output_names=["logits"],
                dynamic_shapes=shapes,
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    except Exception as error:  # noqa: BLE001 - torch.export raises many types for untraceable models
        Path(path).unlink(missing_ok=True)
        cause = error
        while cause.__cause__ is not None:  # the exporter wraps torch.export's reason in its own steps
            cause = cause.__cause__
        reason = _ANSI.sub("", first_line(cause))[:300]
        kind = getattr(getattr(model, "config", None), "model_type", "?")
        raise ExportError(
            f"torch.onnx could not export {type(model).__name__} ({kind}) to ONNX, so hftl export does not "
            f"support it: {type(cause).__name__}: {reason}"
        ) from None


def quantize_int8(source: str | Path, target: str | Path) -> None:
    """onnxruntime's dynamic int8 quantisation: weights of MatMul/Gemm stored as int8, activations
    quantised per call (no calibration data needed).

    Args:
        source: The float32 ``.onnx`` file.
        target: The int8 ``.onnx`` file to write.

    Example:
        >>> quantize_int8("out/model.onnx", "out/model_int8.onnx")
    """
    quantization = importlib.import_module("onnxruntime.quantization")
    with _quiet_logging():  # its advice to pre-process is for static quantisation; dynamic runs as is
        quantization.quantize_dynamic(str(source), str(target), weight_type=quantization.QuantType.QInt8)


@contextlib.contextmanager
def _quiet_logging():
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)
