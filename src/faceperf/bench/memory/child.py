"""The measuring child: ``python -m faceperf.bench.memory.child '<MemoryRequest JSON>'``.

It imports what the measurement needs and reads its input first, so the floor is the process
with its runtime and nothing of the artifact; then it times and peaks two phases, opening the
artifact (load) and the steady calls, and prints one JSON line (``MemoryPeaks.to_json``) for
bench/memory/peak.py to read. Nothing else may reach stdout.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from faceperf.artifacts.layout import artifact_path
from faceperf.artifacts.manifest import read_manifest
from faceperf.bench.memory.leak import MemoryTrace, sample_run
from faceperf.bench.memory.meters import (
    MemoryMeasurementError,
    PeakMeter,
    Reading,
    peak_meter,
    reader_name,
    resident_reader,
)
from faceperf.bench.memory.peak import MTCNN, PIPELINE, MemoryPeaks, MemoryRequest
from faceperf.bench.memory.workloads import (
    Step,
    model_step,
    mtcnn_step,
    pipeline_step,
    scene_frames,
)
from faceperf.pipeline.profiler import Clock
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.factory import verify_artifact


@dataclass(frozen=True)
class Phases:
    """The floor, and what the load and steady phases read, with their durations."""

    floor: int
    load: Reading
    steady: Reading
    load_s: float
    steady_s: float


def measure_phases(
    meter: PeakMeter, load: Callable[[], Step], calls: int, clock: Clock = time.perf_counter
) -> Phases:
    """Read the floor, then peak ``load()`` and ``calls`` calls of the step it returns.

    Args:
        meter: the platform's meter (meters.peak_meter), or a stand-in in tests.
        load: opens the artifact and returns the step to repeat.
        calls: steady calls.
        clock: returns seconds; injected so tests control time.
    """
    gc.collect()  # garbage of the imports is not the floor
    floor = meter.start()
    start = clock()
    step = load()
    load_s = clock() - start
    loaded = meter.stop()
    meter.start()
    start = clock()
    for _ in range(calls):
        step()
    steady_s = clock() - start
    return Phases(floor, loaded, meter.stop(), load_s, steady_s)


def prepare(request: MemoryRequest) -> Callable[[], Step]:
    """Everything before the floor (the input read, the files' hashes checked), returning
    what opens the artifact."""
    ref = ArtifactRef(
        request.directory, request.variant, request.backend, request.threads, request.cpu_arena
    )
    if request.subject == PIPELINE:
        # The loop's code (OpenCV, the models' pre-processing and what they import) belongs
        # to the floor: loading is opening the three artifacts.
        import faceperf.pipeline.face_mirror
        import faceperf.pipeline.video

        return lambda: pipeline_step(ref)
    if request.subject == MTCNN:
        import faceperf.pipeline.mtcnn_detector  # noqa: F401

        frames = scene_frames()
        return lambda: mtcnn_step(ref, frames)
    if request.feed is None:
        raise MemoryMeasurementError(f"{request.subject}: a model measurement needs its feed")
    # Hashed here, before the floor: the check's reading of the file is not the model's load.
    verify_artifact(
        artifact_path(request.directory, request.subject, request.variant),
        read_manifest(request.directory).record(request.subject, request.variant),
    )
    feed = np.load(request.feed)
    return lambda: model_step(ref, request.subject, feed, verify=False)


def measure_request(request: MemoryRequest, meter: PeakMeter) -> MemoryPeaks:
    """The record of ``request``, measured in this process (the child's whole job)."""
    phases = measure_phases(meter, prepare(request), request.calls)
    return MemoryPeaks(
        subject=request.subject,
        variant=request.variant,
        backend=request.backend,
        threads=request.threads,
        calls=request.calls,
        method=meter.method,
        floor_bytes=phases.floor,
        load_peak_bytes=phases.load.peak,
        after_load_bytes=phases.load.current,
        steady_peak_bytes=phases.steady.peak,
        after_steady_bytes=phases.steady.current,
        load_s=phases.load_s,
        steady_s=phases.steady_s,
    )


def trace_request(request: MemoryRequest) -> MemoryTrace:
    """A leak run of ``request`` in this process: opened, then ``calls`` calls sampled every
    ``sample_every``."""
    step = prepare(request)()
    subject = f"{request.subject}/{request.variant}"
    reader = resident_reader()
    return sample_run(subject, step, request.calls, request.sample_every, reader, reader_name())


def _main(argv: list[str]) -> None:
    request = MemoryRequest.from_json(json.loads(argv[0]))
    if request.sample_every:
        print(json.dumps(trace_request(request).to_json()))
    else:
        print(json.dumps(measure_request(request, peak_meter()).to_json()))


if __name__ == "__main__":
    _main(sys.argv[1:])
