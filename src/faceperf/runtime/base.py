"""The one interface every backend implements: load an artifact, run named inputs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np

from faceperf.artifacts.manifest import TensorInfo
from faceperf.errors import ArtifactError, InputMismatchError


class Runner(ABC):
    """A loaded model that runs batches of named inputs.

    Attributes:
        backend: the backend's name (``ort-cpu``, ``coreml``, ``torch`` ...).
        source: what was loaded (a file path, or a description), for messages.
        inputs: declared input tensors; feeds are checked against them before running.
        outputs: declared output tensors, in order.
    """

    backend: str
    source: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Check ``feeds`` against the declared inputs, run, and return outputs by name."""
        check_feeds(self.source, self.inputs, feeds)
        return self._run(feeds)

    @abstractmethod
    def _run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @property
    @abstractmethod
    def executed_on(self) -> tuple[str, ...]:
        """The providers or compute units that really serve this model, most preferred first."""


def check_feeds(
    source: str, declared: tuple[TensorInfo, ...], feeds: Mapping[str, np.ndarray]
) -> None:
    """Raise InputMismatchError unless ``feeds`` match ``declared`` in names, ranks, fixed
    dimensions and dtypes."""
    expected = [t.name for t in declared]
    if sorted(feeds) != sorted(expected):
        raise InputMismatchError(f"{source}: inputs {sorted(feeds)} given, expected {expected}")
    for info in declared:
        value = feeds[info.name]
        if not isinstance(value, np.ndarray):
            raise InputMismatchError(
                f"{source}: input {info.name!r} is a {type(value).__name__}, expected a NumPy array"
            )
        if value.dtype.name != info.dtype:
            raise InputMismatchError(
                f"{source}: input {info.name!r} has dtype {value.dtype.name}, expected {info.dtype}"
            )
        fixed_dims_differ = value.ndim == len(info.shape) and any(
            isinstance(want, int) and want != got
            for want, got in zip(info.shape, value.shape, strict=True)
        )
        if value.ndim != len(info.shape) or fixed_dims_differ:
            raise InputMismatchError(
                f"{source}: input {info.name!r} has shape {tuple(value.shape)}, "
                f"expected {_shape_text(info.shape)}"
            )


def check_declared(
    source: str, declared: tuple[TensorInfo, ...], actual: tuple[TensorInfo, ...]
) -> None:
    """Raise ArtifactError unless the artifact's own inputs are those the manifest declares.

    Catches a reconversion whose graph was renamed, re-shaped or re-typed while its manifest
    still describes the old contract (the file's hash alone cannot: the manifest came with it).
    """
    if [t.contract() for t in declared] != [t.contract() for t in actual]:
        raise ArtifactError(
            f"{source}: the file's inputs {_tensors_text(actual)} differ from the manifest's "
            f"{_tensors_text(declared)}"
        )


def _tensors_text(tensors: tuple[TensorInfo, ...]) -> str:
    return ", ".join(f"{t.name} {_shape_text(t.shape)} {t.dtype}" for t in tensors)


def _shape_text(shape: tuple[int | str, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"
