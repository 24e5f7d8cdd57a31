"""The export's own error: a model torch.onnx can't export, or an export the check refuses."""

from __future__ import annotations

from ..errors import HftlError

__all__ = ["ExportError"]


class ExportError(HftlError):
    """The model could not be exported, or its export disagrees with PyTorch more than allowed."""
