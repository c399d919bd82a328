"""Core ML prediction through coremltools (macOS only)."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from faceperf.artifacts.manifest import TensorInfo
from faceperf.errors import ArtifactError, BackendUnavailableError
from faceperf.runtime.backends import COMPUTE_UNITS
from faceperf.runtime.base import Runner, check_declared


def coreml_unavailable_reason() -> str | None:
    """Why Core ML prediction cannot run here, or None when it can."""
    if platform.system() != "Darwin":
        return (
            f"Core ML prediction needs macOS; this is {platform.system()} "
            "(coremltools converts models here but cannot predict)"
        )
    return None


class CoreMLRunner(Runner):
    """An .mlpackage loaded by coremltools with chosen compute units.

    Args:
        path: the .mlpackage folder.
        inputs: declared inputs (from the manifest).
        outputs: declared outputs, in order.
        compute_units: one of COMPUTE_UNITS.
    """

    def __init__(
        self,
        path: Path,
        inputs: tuple[TensorInfo, ...],
        outputs: tuple[TensorInfo, ...],
        compute_units: str = "CPU_AND_NE",
    ) -> None:
        reason = coreml_unavailable_reason()
        if reason:
            raise BackendUnavailableError(reason)
        if compute_units not in COMPUTE_UNITS:
            raise BackendUnavailableError(
                f"unknown compute units {compute_units!r}; "
                f"expected one of {', '.join(COMPUTE_UNITS)}"
            )
        import coremltools as ct

        self.backend, self.source = "coreml", str(path)
        self.inputs, self.outputs = inputs, outputs
        self._units = compute_units
        try:
            self._model = ct.models.MLModel(
                str(path), compute_units=getattr(ct.ComputeUnit, compute_units)
            )
        except Exception as err:  # coremltools raises many types for a broken package
            raise ArtifactError(f"{path}: Core ML cannot load it: {err}") from None

        from faceperf.artifacts.coreml_export import describe_coreml

        check_declared(self.source, inputs, describe_coreml(path)[0])

    def _run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self._model.predict(dict(feeds))
        return {t.name: np.asarray(result[t.name]) for t in self.outputs}

    @property
    def executed_on(self) -> tuple[str, ...]:
        return (f"coreml:{self._units}",)
