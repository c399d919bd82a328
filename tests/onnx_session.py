"""Shared by the model tests: export a module as the artifact builder does, open it in ORT."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import torch
from torch import nn

from faceperf.artifacts.onnx_export import OPSET


def export_session(
    model: nn.Module,
    example: torch.Tensor,
    path: Path,
    output_names: tuple[str, ...] | list[str],
    dynamic_axes: dict | None = None,
) -> ort.InferenceSession:
    """Trace ``model`` on ``example`` with the legacy exporter (input "image") and load it."""
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=False,
        opset_version=OPSET,
        input_names=["image"],
        output_names=list(output_names),
        dynamic_axes=dynamic_axes,
    )
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
