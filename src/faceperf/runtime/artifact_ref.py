"""Which artifacts a model wrapper opens, and how they run: one validated record.

Every model wrapper (the RetinaFace detector, STAR, MTL, the MTCNN cascade, the Face Mirror
loop) and the accuracy and benchmark code open their artifacts through ``ArtifactRef.open``, so
the folder, variant, backend and thread count travel together, are checked once where they are
parsed, and reach ``open_runner`` the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceperf.artifacts.layout import Variant
from faceperf.errors import ArtifactError
from faceperf.runtime.backends import BackendChoice, parse_backend
from faceperf.runtime.base import Runner
from faceperf.runtime.factory import open_runner

DEFAULT_BACKEND = BackendChoice("ort-cpu", None)


@dataclass(frozen=True)
class ArtifactRef:
    """An artifact folder, the variant to open, its backend and ONNX Runtime threads.

    Args:
        directory: an artifact folder in the contract's layout (a string is taken too).
        variant: a ``Variant``, or its name (``baseline``, ``optimized``, ``optimized_fp16``,
            ``coreml``); stored parsed.
        backend: ``ort-cpu``, ``coreml:CPU_ONLY`` ... or a parsed ``BackendChoice``; stored
            parsed, so a bad name fails here rather than when the first model opens.
        threads: intra-op threads for ONNX Runtime; None lets it choose.
        cpu_arena: ONNX Runtime's CPU memory arena (default on; off only to measure what the
            arena holds).

    Raises:
        ArtifactError: an unknown variant.
        BackendUnavailableError: an unknown backend or compute units.
        ValueError: threads below 1.
    """

    directory: Path
    variant: Variant = Variant.OPTIMIZED
    backend: BackendChoice = DEFAULT_BACKEND
    threads: int | None = None
    cpu_arena: bool = True

    def __post_init__(self) -> None:
        try:
            variant = Variant.parse(self.variant)
        except ValueError as err:
            raise ArtifactError(str(err)) from None
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads {self.threads}: expected at least 1, or None")
        # Callers pass the loose forms the CLI and pytest options produce; store one form.
        object.__setattr__(self, "directory", Path(self.directory))
        object.__setattr__(self, "variant", variant)
        object.__setattr__(self, "backend", parse_backend(self.backend))

    def open(self, model: str, verify: bool = True) -> Runner:
        """A runner for ``<directory>/<model>/<variant>`` on the backend.

        Args:
            model: model name (``star``, ``mtcnn_pnet`` ...).
            verify: refuse a file whose sha256 differs from its manifest record.
        """
        return open_runner(
            self.directory,
            model,
            self.variant,
            self.backend,
            threads=self.threads,
            verify=verify,
            cpu_arena=self.cpu_arena,
        )
