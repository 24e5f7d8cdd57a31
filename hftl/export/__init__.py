"""Deployment: a saved classifier exported to ONNX (optionally int8) and checked against PyTorch.

Example:
    >>> from hftl.export import export_model
    >>> result = export_model("outputs/minilm-bbc", quantize="dynamic-int8")
    >>> print(result.table)  # accuracy, agreement, max logit difference, latency at batch 1 and 32
"""

from ._errors import ExportError
from .api import FORMATS, QUANTIZATIONS, ExportResult, export_command, export_model
from .check import CheckSettings, VariantResult, compare, markdown_table
from .onnx import OPSET, export_onnx, quantize_int8

__all__ = [
    "FORMATS",
    "OPSET",
    "QUANTIZATIONS",
    "CheckSettings",
    "ExportError",
    "ExportResult",
    "VariantResult",
    "compare",
    "export_command",
    "export_model",
    "export_onnx",
    "markdown_table",
    "quantize_int8",
]
