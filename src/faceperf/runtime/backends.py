"""Backend names: a runtime, and for Core ML the compute units, as one string.

``coreml`` and ``ort-coreml`` take an optional ``:UNITS`` suffix (``coreml:CPU_ONLY``,
``ort-coreml:ALL``) so that every option that names a backend (``--perf-backend``,
``--accuracy-backend``, the CLI's ``--backend``) can also choose where Core ML may run.
Without a suffix both use CPU_AND_NE, what the ``coreml`` variant is converted for.

Functions that take a backend accept either the name or a parsed ``BackendChoice`` (the CLI
parses ``--backend`` once, at the command line); ``parse_backend`` and ``backend_name`` turn
either into the form they need.
"""

from __future__ import annotations

from dataclasses import dataclass

from faceperf.errors import BackendUnavailableError

BASES = ("ort-cpu", "ort-coreml", "ort-cuda", "coreml", "torch")
COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")
DEFAULT_COMPUTE_UNITS = "CPU_AND_NE"
# ONNX Runtime's CoreML execution provider spells the same choices its own way.
ORT_COREML_UNITS = {
    "ALL": "ALL",
    "CPU_AND_NE": "CPUAndNeuralEngine",
    "CPU_AND_GPU": "CPUAndGPU",
    "CPU_ONLY": "CPUOnly",
}
_WITH_UNITS = ("coreml", "ort-coreml")


@dataclass(frozen=True)
class BackendChoice:
    """A parsed backend name."""

    base: str  # one of BASES
    compute_units: str | None  # one of COMPUTE_UNITS, for coreml and ort-coreml only

    @property
    def units(self) -> str:
        """The compute units in effect (the default when none were named)."""
        return self.compute_units or DEFAULT_COMPUTE_UNITS

    @property
    def is_coreml(self) -> bool:
        return self.base == "coreml"

    @property
    def name(self) -> str:
        """The name as a user spells it (``coreml:CPU_ONLY``); ``parse_backend`` reads it back."""
        return f"{self.base}:{self.compute_units}" if self.compute_units else self.base

    def __str__(self) -> str:
        # Messages, labels and JSON show the backend as the user typed it.
        return self.name


def parse_backend(name: str | BackendChoice) -> BackendChoice:
    """``coreml:CPU_ONLY`` → BackendChoice("coreml", "CPU_ONLY"); errors name the choices.

    A ``BackendChoice`` is returned as it is, so callers can take either form.
    """
    if isinstance(name, BackendChoice):
        return name
    base, _, units = name.partition(":")
    if base not in BASES:
        raise BackendUnavailableError(
            f"unknown backend {name!r}; expected one of {', '.join(BASES)} "
            f"({' or '.join(_WITH_UNITS)} optionally with :{'|'.join(COMPUTE_UNITS)})"
        )
    if not units:
        return BackendChoice(base, None)
    if base not in _WITH_UNITS:
        raise BackendUnavailableError(
            f"backend {name!r}: compute units apply only to {' and '.join(_WITH_UNITS)}"
        )
    if units not in COMPUTE_UNITS:
        raise BackendUnavailableError(
            f"backend {name!r}: unknown compute units {units!r}; expected one of "
            f"{', '.join(COMPUTE_UNITS)}"
        )
    return BackendChoice(base, units)


def backend_name(backend: str | BackendChoice) -> str:
    """The backend's name, for code that compares, prints or records it as text.

    A string is returned unchanged (not validated: callers that need a valid backend parse it).
    """
    return backend.name if isinstance(backend, BackendChoice) else backend
