"""Peak memory of one model (or the Face Mirror pipeline) per phase, each in a fresh process.

A child process (``python -m faceperf.bench.memory.child``) imports what it needs, reads its
floor, opens the artifact (load: session creation, Core ML compile) and runs it (steady), with
the peak of each phase read by the platform's meter (bench/memory/meters.py). A fresh process
per measurement, because a process never gives memory back to the same figure: whatever the
parent imported or ran before would raise every floor and hide every peak below it.

Figures are bytes; ``above floor`` is what the phase added to the process, the figure to
compare between two artifacts; the absolute peak is what the system sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from faceperf.artifacts.layout import Variant
from faceperf.artifacts.manifest import Manifest, read_manifest
from faceperf.bench.memory.leak import MemoryTrace
from faceperf.bench.memory.meters import MemoryMeasurementError
from faceperf.runtime.backends import BackendChoice, parse_backend

SCHEMA_VERSION = 1
PIPELINE = "face_mirror"  # the subject name of the whole Face Mirror loop
PIPELINE_MODELS = ("retinaface", "star", "mtl")  # what FaceMirrorLoop.open opens
MTCNN = "mtcnn"  # the subject name of the whole MTCNN cascade on the fixture scenes
MTCNN_MODELS = ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")
COMPOSITES = {PIPELINE: PIPELINE_MODELS, MTCNN: MTCNN_MODELS}
PHASES = ("load", "steady")
CHILD_MODULE = "faceperf.bench.memory.child"
DEFAULT_CALLS = 5  # the arena is sized by the first call of a fixed shape; later ones reuse it
DEFAULT_PIPELINE_FRAMES = 10  # a detection and tracking steps; about 1 s a frame here
# What the gates measure (the merge gate's memory, the memory budgets), kept short for `make
# perf`: a model's arena is sized by its first call of a fixed shape, so a second only confirms
# it; MTCNN runs the four fixture scenes once (each scene's pyramid and batch sizes); the
# pipeline four frames of the 1080p clip (a detection, then tracking). Measured: more frames
# move the pipeline's steady peak by under 1 % (docs/memory.md).
GATE_CALLS, GATE_MTCNN_FRAMES, GATE_PIPELINE_FRAMES = 2, 4, 4
# glibc raises its mmap threshold to the size of every mapped buffer it frees (up to 32 MiB), so
# whether a later large buffer is mapped (and unmapped when freed) or carved from the heap (and
# kept) depends on what was freed before it. ONNX Runtime's session creation frees tens of MB
# of transient buffers, so three sessions opened in a row (the pipeline) peaked anywhere
# between +289 and +351 MiB above the floor in five identical processes. Fixed at its initial
# 128 KiB, every buffer above it is mapped and unmapped: the same five read within 2 MiB
# (docs/memory.md). Other C libraries (macOS) ignore the variable.
PEAK_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": "131072"}


@dataclass(frozen=True)
class MemoryRequest:
    """What one child measures.

    Args:
        directory: the artifact folder.
        subject: a model name, ``face_mirror`` for the whole pipeline, or ``mtcnn`` for the
            MTCNN cascade on the fixture scenes.
        variant: the artifact variant (every model of the pipeline uses it).
        backend: ``ort-cpu``, ``coreml`` ... as ``ArtifactRef`` takes it.
        threads: intra-op threads of ONNX Runtime; None lets it choose.
        calls: steady calls (frames for the pipeline) after loading.
        feed: a ``.npy`` file with the model's input (written by the parent so the child
            imports no fixture code: its floor is the runtime's); None for the pipeline.
        sample_every: 0 measures the phases' peaks; N > 0 makes it a leak run instead: the
            memory read every N of the ``calls`` (a MemoryTrace, bench/memory/leak.py).
        cpu_arena: ONNX Runtime's CPU memory arena on (the default, as the application runs)
            or off (to tell what the arena holds: ``arena_share``).
    """

    directory: Path
    subject: str
    variant: str
    backend: str | BackendChoice = "ort-cpu"
    threads: int | None = None
    calls: int = DEFAULT_CALLS
    feed: Path | None = None
    sample_every: int = 0
    cpu_arena: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory))
        object.__setattr__(self, "variant", str(Variant.parse(str(self.variant))))
        # Parsed here so a bad name fails in the parent, stored as text for the child's JSON.
        object.__setattr__(self, "backend", parse_backend(self.backend).name)
        if self.feed is not None:
            object.__setattr__(self, "feed", Path(self.feed))
        if self.calls < 1:
            raise ValueError(f"calls {self.calls}: expected at least 1")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads {self.threads}: expected at least 1, or None")
        if self.sample_every < 0:
            raise ValueError(f"sample_every {self.sample_every}: expected 0 or more calls")

    @property
    def is_composite(self) -> bool:
        """The subject is several models run as the application runs them (no feed)."""
        return self.subject in COMPOSITES

    def to_json(self) -> dict[str, object]:
        return {
            "directory": str(self.directory),
            "subject": self.subject,
            "variant": self.variant,
            "backend": self.backend,
            "threads": self.threads,
            "calls": self.calls,
            "feed": None if self.feed is None else str(self.feed),
            "sample_every": self.sample_every,
            "cpu_arena": self.cpu_arena,
        }

    @classmethod
    def from_json(cls, doc: dict) -> MemoryRequest:
        return cls(**doc)


@dataclass(frozen=True)
class PhasePeak:
    """One phase's peak: absolute, and above the process's floor (what the phase added)."""

    phase: str
    peak_bytes: int
    floor_bytes: int

    @property
    def above_floor_bytes(self) -> int:
        return self.peak_bytes - self.floor_bytes


@dataclass(frozen=True)
class MemoryPeaks:
    """One child's measurement of a subject, in bytes.

    Args:
        subject, variant, backend, threads, calls: what was measured (see MemoryRequest).
        method: how memory was read (meters.LINUX_HWM, MACOS_FOOTPRINT, PSUTIL_SAMPLED).
        floor_bytes: the process after its imports and input, before the artifact opened.
        load_peak_bytes: the peak while the artifact opened (session creation, compile).
        after_load_bytes: the process once it had opened.
        steady_peak_bytes: the peak over the steady calls (the first call's arena included).
        after_steady_bytes: the process after them.
        load_s, steady_s: how long each phase took (for the record, never judged here).
    """

    subject: str
    variant: str
    backend: str
    threads: int | None
    calls: int
    method: str
    floor_bytes: int
    load_peak_bytes: int
    after_load_bytes: int
    steady_peak_bytes: int
    after_steady_bytes: int
    load_s: float
    steady_s: float
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if min(self.floor_bytes, self.load_peak_bytes, self.steady_peak_bytes) <= 0:
            raise ValueError(
                f"{self.name}: memory figures {self.floor_bytes}, {self.load_peak_bytes}, "
                f"{self.steady_peak_bytes}: expected positive byte counts"
            )

    @property
    def name(self) -> str:
        """``star/optimized (ort-cpu)``: how tables and messages name the measurement."""
        return f"{self.subject}/{self.variant} ({self.backend})"

    def phase(self, phase: str) -> PhasePeak:
        """The ``load`` or ``steady`` peak."""
        if phase not in PHASES:
            raise KeyError(f"phase {phase!r}: expected one of {', '.join(PHASES)}")
        peak = self.load_peak_bytes if phase == "load" else self.steady_peak_bytes
        return PhasePeak(phase, peak, self.floor_bytes)

    def phases(self) -> dict[str, PhasePeak]:
        """Both phases by name: what a budget or a comparison reads."""
        return {phase: self.phase(phase) for phase in PHASES}

    @property
    def peak_bytes(self) -> int:
        """The process's highest figure over both phases."""
        return max(self.load_peak_bytes, self.steady_peak_bytes)

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["load_above_floor_bytes"] = self.phase("load").above_floor_bytes
        doc["steady_above_floor_bytes"] = self.phase("steady").above_floor_bytes
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> MemoryPeaks:
        """The record ``to_json`` wrote (the derived keys are recomputed, not read).

        Raises:
            MemoryMeasurementError: another schema version, or keys missing.
        """
        if doc.get("schema_version") != SCHEMA_VERSION:
            raise MemoryMeasurementError(
                f"memory record schema_version {doc.get('schema_version')!r}, "
                f"expected {SCHEMA_VERSION}"
            )
        try:
            return cls(**{f.name: doc[f.name] for f in fields(cls)})
        except (KeyError, TypeError) as err:
            raise MemoryMeasurementError(f"malformed memory record ({err!r})") from None


# --- spawning the child ---------------------------------------------------------------------------

Run = Callable[..., subprocess.CompletedProcess]


def measure_peaks(
    request: MemoryRequest, timeout_s: float = 600.0, run: Run = subprocess.run
) -> MemoryPeaks:
    """Measure ``request``'s phases in a fresh child process.

    Args:
        request: what to measure; a model request needs its ``feed`` (see ``write_feed``).
        timeout_s: give up on the child after this long.
        run: ``subprocess.run``; injected so tests can stand in for the child.

    Raises:
        MemoryMeasurementError: the child failed, timed out, or printed no record.
    """
    if request.sample_every:
        raise ValueError("a leak request (sample_every > 0) is measured by measure_trace")
    return MemoryPeaks.from_json(_spawn(request, timeout_s, run, PEAK_ENVIRONMENT))


def measure_trace(
    request: MemoryRequest, timeout_s: float = 3600.0, run: Run = subprocess.run
) -> MemoryTrace:
    """Run ``request`` (with ``sample_every`` > 0) in a fresh child, its memory sampled: a
    fresh process has no freed memory for a leak to fill unseen at first.

    Raises:
        MemoryMeasurementError: the child failed, timed out, or printed no trace.
    """
    if not request.sample_every:
        raise ValueError("a leak request needs sample_every > 0")
    doc = _spawn(request, timeout_s, run)
    try:
        return MemoryTrace(**doc)
    except TypeError as err:
        raise MemoryMeasurementError(f"malformed memory trace ({err})") from None


def _spawn(
    request: MemoryRequest, timeout_s: float, run: Run, environment: dict[str, str] | None = None
) -> dict:
    what = f"memory of {request.subject}/{request.variant}"
    env = None if environment is None else {**os.environ, **environment}
    with tempfile.TemporaryDirectory(prefix="faceperf-memory-") as scratch:
        aliased = same_length_paths(request, Path(scratch))
        command = [sys.executable, "-m", CHILD_MODULE, json.dumps(aliased.to_json())]
        try:
            done = run(
                command, capture_output=True, text=True, timeout=timeout_s, check=False, env=env
            )
        except subprocess.TimeoutExpired:
            raise MemoryMeasurementError(f"{what} took over {timeout_s:g} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        # The child saw the alias; the user knows the folder.
        last = last.replace(str(aliased.directory), str(request.directory))
        raise MemoryMeasurementError(f"{what} failed: {last}")
    lines = done.stdout.strip().splitlines()
    try:
        doc = json.loads(lines[-1])
    except (IndexError, ValueError) as err:
        raise MemoryMeasurementError(f"{what}: the child printed no record ({err})") from None
    if not isinstance(doc, dict):
        raise MemoryMeasurementError(f"{what}: the child printed {lines[-1]!r}, not a record")
    return doc


def same_length_paths(request: MemoryRequest, scratch: Path) -> MemoryRequest:
    """``request`` with its folder and feed seen through symlinks in ``scratch`` (``a``,
    ``feed.npy``): paths whose length does not depend on where the files lie.

    The child's strings (its argument, the paths ONNX Runtime keeps while it loads) sit in the
    heap beside the model's buffers, and their length moved how the heap laid out: the same
    STAR FP16 file read +158.5 MiB steady above the floor from /tmp/copyB and +163.4 MiB from
    /work/main/weights/build, STAR FP32 +2.7 MiB, which the merge gate (1 %, 2 MiB) called
    ``larger`` on identical bytes. Through aliases of one length: +159.0 and +158.6 MiB
    (docs/memory.md).
    """
    alias = scratch / "a"
    alias.symlink_to(Path(request.directory).resolve(), target_is_directory=True)
    feed = None
    if request.feed is not None:
        feed = scratch / "feed.npy"
        feed.symlink_to(Path(request.feed).resolve())
    return replace(request, directory=alias, feed=feed)


def write_feed(directory: Path, model: str, variant: str, folder: Path) -> Path:
    """``folder/<model>-<variant>.npy``: the model's input as its manifest declares it (batch 1
    where the batch is free), from the fixture samples."""
    # Imported here: the fixtures pull in torch, which the child must not (its floor).
    from faceperf.fixtures.samples import sample_batch

    info = read_manifest(directory).record(model, variant).inputs[0]
    batch = info.shape[0] if isinstance(info.shape[0], int) else 1
    sample = np.ascontiguousarray(sample_batch(model)[:batch]).astype(info.dtype)
    path = folder / f"{model}-{variant}.npy"
    np.save(path, sample)
    return path


def measure_models(
    directory: Path,
    models: Sequence[str],
    variants: Sequence[str],
    backend: str | BackendChoice = "ort-cpu",
    threads: int | None = None,
    calls: int = DEFAULT_CALLS,
    pipeline_frames: int | None = DEFAULT_PIPELINE_FRAMES,
    say: Callable[[MemoryPeaks], None] | None = None,
    mtcnn_frames: int | None = None,
    workers: int = 1,
) -> tuple[MemoryPeaks, ...]:
    """Every model x variant, then per variant (with ``pipeline_frames``) the pipeline and
    (with ``mtcnn_frames``) the MTCNN cascade, one child each. Variants a manifest lacks are
    left out.

    Args:
        say: given each record as it is measured (progress); None says nothing.
        workers: children at a time (a child's peak is its own pages, whatever runs beside it).
    """
    manifest = read_manifest(Path(directory))
    requests = []
    with tempfile.TemporaryDirectory(prefix="faceperf-memory-") as folder:
        for model in models:
            for variant in variants:
                if not has_variant(manifest, model, variant):
                    continue
                feed = write_feed(Path(directory), model, variant, Path(folder))
                requests.append(
                    MemoryRequest(directory, model, variant, backend, threads, calls, feed)
                )
        for subject, frames in ((PIPELINE, pipeline_frames), (MTCNN, mtcnn_frames)):
            for variant in variants if frames else ():
                if all(has_variant(manifest, m, variant) for m in COMPOSITES[subject]):
                    requests.append(
                        MemoryRequest(directory, subject, variant, backend, threads, frames)
                    )
        return tuple(measure_many(requests, workers, say=say))


def measure_many(
    requests: Sequence[MemoryRequest],
    workers: int = 1,
    measure: Callable[[MemoryRequest], MemoryPeaks] | None = None,
    say: Callable[[MemoryPeaks], None] | None = None,
) -> list[MemoryPeaks]:
    """Each request in its own fresh child, ``workers`` at a time, records in request order.

    Children run side by side: a process's peak is its own pages, which another process's work
    does not move (CPU contention slows a child, it does not grow it).

    Args:
        measure: measures one request (default :func:`measure_peaks`); injected in tests.
        say: given each record in request order as it is ready (progress).

    Raises:
        MemoryMeasurementError: a child failed (the first failure, after the others finished).
        ValueError: ``workers`` below 1.
    """
    if workers < 1:
        raise ValueError(f"workers {workers}: expected at least 1")
    measure = measure or measure_peaks
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(measure, request) for request in requests]
        return [_told(future.result(), say) for future in futures]


def measure_without_arena(directory: Path, record: MemoryPeaks) -> MemoryPeaks | None:
    """``record``'s measurement again, ONNX Runtime's CPU arena off: what the arena held is the
    difference (the arena keeps freed tensors for reuse and grows by blocks). None on Core ML,
    which has no such arena.

    Raises:
        MemoryMeasurementError: the child failed.
    """
    if parse_backend(record.backend).is_coreml:
        return None
    with tempfile.TemporaryDirectory(prefix="faceperf-memory-") as folder:
        request = subject_request(
            directory,
            record.subject,
            record.variant,
            Path(folder),
            backend=record.backend,
            threads=record.threads,
            calls=record.calls,
            cpu_arena=False,
        )
        return measure_peaks(request)


def subject_request(
    directory: Path, subject: str, variant: str, folder: Path, **settings: object
) -> MemoryRequest:
    """A request to measure ``subject``: a model's with its input written into ``folder``
    (``write_feed``), a composite's without one (it makes its own frames).

    Args:
        settings: the other MemoryRequest fields (backend, threads, calls, cpu_arena ...).
    """
    feed = None
    if subject not in COMPOSITES:
        folder.mkdir(parents=True, exist_ok=True)
        feed = write_feed(Path(directory), subject, variant, folder)
    return MemoryRequest(directory, subject, variant, feed=feed, **settings)


def has_variant(manifest: Manifest, model: str, variant: str) -> bool:
    """The manifest lists ``model``'s ``variant``."""
    return model in manifest.models and variant in manifest.models[model].variants


def _told(record: MemoryPeaks, say: Callable[[MemoryPeaks], None] | None) -> MemoryPeaks:
    if say is not None:
        say(record)
    return record
