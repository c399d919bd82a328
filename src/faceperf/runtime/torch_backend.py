"""PyTorch eager: the reference every artifact is compared with."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from faceperf.artifacts.manifest import TensorInfo
from faceperf.models.registry import ModelSpec
from faceperf.runtime.base import Runner


def reference_io(spec: ModelSpec) -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
    """The eager model's tensors: the baseline export's dynamic axes, float32 throughout."""
    shape = tuple(spec.baseline_dynamic.get(i, d) for i, d in enumerate(spec.fixed_shape))
    inputs = (TensorInfo(spec.input_name, shape, "float32"),)
    outputs = tuple(TensorInfo(name, (), "float32") for name in spec.output_names)
    return inputs, outputs


class TorchRunner(Runner):
    """An eval-mode module run eagerly on the CPU.

    Args:
        model: the module with its weights loaded.
        spec: the model's registry entry (tensor names and dynamic axes).
        label: what the weights are, for messages (e.g. "star (surrogate(seed=0))").
    """

    def __init__(self, model: nn.Module, spec: ModelSpec, label: str) -> None:
        self.backend, self.source = "torch", label
        self.inputs, self.outputs = reference_io(spec)
        self._model = model.eval()
        self._spec = spec

    def _run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            results = self._model(torch.from_numpy(feeds[self._spec.input_name]))
        return {
            name: value.numpy()
            for name, value in zip(self._spec.output_names, results, strict=True)
        }

    @property
    def executed_on(self) -> tuple[str, ...]:
        return (f"torch-{torch.__version__}:cpu",)
