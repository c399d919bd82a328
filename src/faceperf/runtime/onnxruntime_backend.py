"""ONNX Runtime backends: CPU, and the CoreML and CUDA execution providers where present."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from faceperf.artifacts.manifest import TensorInfo
from faceperf.errors import ArtifactError, BackendUnavailableError
from faceperf.runtime.base import Runner, check_declared

# backend name -> (execution provider, its options). The CoreML options are those the
# optimisation reports found best: ML Program format on CPU and Neural Engine.
PROVIDERS: dict[str, tuple[str, dict[str, str]]] = {
    "ort-cpu": ("CPUExecutionProvider", {}),
    "ort-coreml": (
        "CoreMLExecutionProvider",
        {"ModelFormat": "MLProgram", "MLComputeUnits": "CPUAndNeuralEngine"},
    ),
    "ort-cuda": ("CUDAExecutionProvider", {}),
}


def available_backends() -> list[str]:
    present = set(ort.get_available_providers())
    return [name for name, (provider, _) in PROVIDERS.items() if provider in present]


class OrtRunner(Runner):
    """An ONNX file in an ONNX Runtime session.

    Args:
        path: the .onnx file.
        inputs: declared inputs (from the manifest) to check feeds against.
        outputs: declared outputs, in order.
        backend: one of PROVIDERS.
        threads: intra-op threads; None lets ONNX Runtime choose (all cores).
        provider_options: overrides of the provider's default options.
        cpu_arena: ONNX Runtime's CPU memory arena (its default, on); off, every tensor is
            allocated and freed as it is needed, which shows what the arena itself holds.
    """

    def __init__(
        self,
        path: Path,
        inputs: tuple[TensorInfo, ...],
        outputs: tuple[TensorInfo, ...],
        backend: str = "ort-cpu",
        threads: int | None = None,
        provider_options: Mapping[str, str] | None = None,
        cpu_arena: bool = True,
    ) -> None:
        if backend not in PROVIDERS:
            raise BackendUnavailableError(
                f"unknown ONNX Runtime backend {backend!r}; expected one of {', '.join(PROVIDERS)}"
            )
        provider, defaults = PROVIDERS[backend]
        if provider not in ort.get_available_providers():
            raise BackendUnavailableError(
                f"{backend}: this onnxruntime {ort.__version__} build has no {provider} "
                f"(it has {', '.join(ort.get_available_providers())})"
            )
        self.backend, self.source = backend, str(path)
        self.inputs, self.outputs = inputs, outputs
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = threads
        options.enable_cpu_mem_arena = cpu_arena
        chosen = [(provider, {**defaults, **(provider_options or {})})]
        if provider != "CPUExecutionProvider":
            chosen.append(("CPUExecutionProvider", {}))  # for the ops the accelerator refuses
        if not Path(path).is_file():
            raise ArtifactError(f"{path}: no such ONNX file")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=chosen)
        except Exception as err:  # ORT raises its own exception types for bad files
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ArtifactError(f"{path}: ONNX Runtime cannot load it: {first}") from None
        check_declared(self.source, inputs, tuple(_info(i) for i in self._session.get_inputs()))
        self._names = [o.name for o in self._session.get_outputs()]

    def _run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._names, self._session.run(self._names, dict(feeds)), strict=True))

    @property
    def executed_on(self) -> tuple[str, ...]:
        return tuple(self._session.get_providers())


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


def _info(node: ort.NodeArg) -> TensorInfo:
    shape = tuple(d if isinstance(d, int) else str(d) for d in node.shape)
    return TensorInfo(node.name, shape, _ORT_TYPES.get(node.type, node.type))
