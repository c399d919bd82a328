"""What the pipeline's model wrappers share: one runner, a profiler, the stage names, and
opening themselves from an artifact folder."""

from __future__ import annotations

from typing import ClassVar, Self

from faceperf.pipeline.profiler import NullProfiler, StageProfiler
from faceperf.pipeline.runner_io import image_input
from faceperf.pipeline.stage_names import stage_names
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.base import Runner


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
    def open(cls, ref: ArtifactRef, *, profiler: StageProfiler | None = None) -> Self:
        """Open ``<ref.directory>/<artifact>/<ref.variant>`` on ``ref.backend``.

        Subclasses with settings of their own (the RetinaFace thresholds) override this to take
        their settings record.

        Args:
            ref: the artifact folder, variant, backend and threads.
            profiler: stage timing (default: records nothing).
        """
        return cls(ref.open(cls.artifact), profiler=profiler)
