"""The long leak runs of an artifact folder: each model, then the Face Mirror pipeline, each in
a fresh child process (bench/memory/peak.py ``measure_trace``), each trace judged.

Hours of the application's running are what a leak costs; minutes are what a check can spend.
So these runs are long enough for a leak of ``leak.DEFAULT_THRESHOLD`` bytes per call to add
up to more than the page-sized steps of a resident-set figure (2000 model calls, 1000 frames),
and they run from ``faceperf bench leak`` (nightly), not in every ``make perf``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from faceperf.artifacts.manifest import read_manifest
from faceperf.bench.memory.leak import LeakPolicy, LeakVerdict, MemoryTrace, judge_leak
from faceperf.bench.memory.leak import sampling_interval as interval
from faceperf.bench.memory.peak import (
    COMPOSITES,
    MTCNN,
    PIPELINE,
    MemoryRequest,
    has_variant,
    measure_trace,
    write_feed,
)
from faceperf.runtime.backends import BackendChoice

MODEL_CALLS = 2000
PIPELINE_FRAMES = 1000
MTCNN_FRAMES = 1000  # 250 passes over the four scenes
DEFAULT_POLICY = LeakPolicy()


@dataclass(frozen=True)
class LeakRun:
    """One long run: its trace (for the plot) and the verdict on it."""

    trace: MemoryTrace
    verdict: LeakVerdict

    def to_json(self) -> dict[str, object]:
        return {"verdict": self.verdict.to_json(), "trace": self.trace.to_json()}


def leak_runs(
    directory: Path,
    models: Sequence[str],
    variant: str = "optimized",
    backend: str | BackendChoice = "ort-cpu",
    threads: int | None = None,
    calls: int = MODEL_CALLS,
    frames: int | None = PIPELINE_FRAMES,
    mtcnn_frames: int | None = MTCNN_FRAMES,
    policy: LeakPolicy = DEFAULT_POLICY,
    say: Callable[[LeakRun], None] | None = None,
) -> tuple[LeakRun, ...]:
    """``calls`` calls of each of ``models``, then ``mtcnn_frames`` frames of the MTCNN cascade
    and ``frames`` pipeline frames (None or 0: no such run), sampled about 200 times each and
    judged by ``policy``. A composite whose models the folder lacks is left out.

    Args:
        say: given each run as it finishes (progress); None says nothing.
    """
    runs = []
    with tempfile.TemporaryDirectory(prefix="faceperf-leak-") as folder:
        requests = [
            MemoryRequest(
                directory,
                model,
                variant,
                backend,
                threads,
                calls,
                write_feed(Path(directory), model, variant, Path(folder)),
                interval(calls),
            )
            for model in models
        ]
        manifest = read_manifest(Path(directory))
        for subject, count in ((MTCNN, mtcnn_frames), (PIPELINE, frames)):
            if count and all(has_variant(manifest, m, variant) for m in COMPOSITES[subject]):
                requests.append(
                    MemoryRequest(
                        directory, subject, variant, backend, threads, count, None, interval(count)
                    )
                )
        for request in requests:
            trace = measure_trace(request)
            run = LeakRun(trace, judge_leak(trace, policy))
            if say is not None:
                say(run)
            runs.append(run)
    return tuple(runs)
