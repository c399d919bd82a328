"""What the pipeline's model wrappers share: one runner, a profiler, the stage names, and
opening themselves from an artifact folder."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

from faceperf.pipeline.profiler import NullProfiler, StageProfiler
from faceperf.pipeline.runner_io import image_input
from faceperf.pipeline.stage_names import stage_names
from faceperf.runtime.backends import BackendChoice
from faceperf.runtime.base import Runner
from faceperf.runtime.factory import open_runner


class ArtifactModel:
    """Base of a wrapper around one artifact model.

    Subclasses name their artifact model (``artifact``) and the application's operation prefix
    (``operation``), and call ``_attach`` from their constructor.
    """

    artifact: ClassVar[str]
    operation: ClassVar[str]

    def _attach(self, runner: Runner, profiler: StageProfiler | None) -> None:
        image_input(runner)
        self.runner = runner
        self.profiler = profiler if profiler is not None else NullProfiler()
        self.names = stage_names(self.operation, runner.backend)

    @classmethod
    def from_artifacts(
        cls,
        directory: Path | str,
        variant: str = "optimized",
        backend: str | BackendChoice = "ort-cpu",
        threads: int | None = None,
        **kwargs: object,
    ) -> Self:
        """Open ``<directory>/<artifact>/<variant>`` on ``backend``.

        Args:
            directory: an artifact folder.
            variant: ``baseline``, ``optimized``, ``optimized_fp16`` or ``coreml``.
            backend: a runner backend (``ort-cpu``, ``coreml`` ...).
            threads: intra-op threads for ONNX Runtime (None: its default).
            **kwargs: passed to the constructor (profiler, thresholds ...).
        """
        runner = open_runner(Path(directory), cls.artifact, variant, backend, threads=threads)
        return cls(runner, **kwargs)
