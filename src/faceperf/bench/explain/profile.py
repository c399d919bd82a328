"""Profile ONNX artifacts node by node with ONNX Runtime's own profiler.

Each artifact runs in its own InferenceSession configured as the perf suite runs a model
(one intra-op thread by default, one inter-op thread, no spinning) plus the profiler, which
times every kernel of every call. Its trace and the optimised graph the session ran are
written to a temporary folder, read into an ``OpProfile``, and deleted.

Two artifacts to compare are profiled in alternation (``profile_interleaved``), call for call,
the order swapped every round: whatever the machine does meanwhile (another tenant, a
frequency change) then weighs on both sides alike, instead of on whichever ran second.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from faceperf.bench.explain.graph import read_ran_graph
from faceperf.bench.explain.record import OpProfile
from faceperf.bench.explain.trace import TraceError, parse_trace, read_trace
from faceperf.errors import ArtifactError, InputMismatchError

Clock = Callable[[], float]


@dataclass(frozen=True)
class Calls:
    """How many calls to profile: at least ``minimum`` and at least ``seconds`` of them, at
    most ``maximum``, after ``warmup`` unprofiled ones.

    The defaults: 20 calls put a node's median within about a quarter of its per-call spread
    (the standard error of a median of n draws is ~1.25 sigma / sqrt(n)), enough to tell a shift
    of one interquartile range (~1.35 sigma) from chance; quartiles need that many draws to mean
    anything. 3 seconds let a small model (MTCNN, ~1 ms a call) take hundreds of calls for the
    price of twenty of STAR's, so brief interference (a timer tick, another tenant) lands on a
    few calls and the medians ignore it. The maximum bounds the trace (one event per node per
    call; ORT stops recording at a million events) and the time on a tiny model. Three warm-up
    calls: the first sizes the memory arena and pre-packs weights, the next settle the caches.

    Args:
        minimum: profiled calls at least (per artifact).
        seconds: wall-clock time of profiled calls at least (all artifacts together).
        maximum: profiled calls at most.
        warmup: calls first, left out of the profile.
    """

    minimum: int = 20
    seconds: float = 3.0
    maximum: int = 1000
    warmup: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.maximum:
            raise ValueError(
                f"calls: minimum {self.minimum}, maximum {self.maximum}: expected "
                "1 <= minimum <= maximum"
            )
        if self.seconds < 0 or self.warmup < 0:
            raise ValueError(f"calls: seconds {self.seconds}, warmup {self.warmup}: expected >= 0")

    @classmethod
    def exactly(cls, count: int, warmup: int = 3) -> Calls:
        """``count`` profiled calls, however long they take."""
        return cls(minimum=count, seconds=0.0, maximum=count, warmup=warmup)

    def enough(self, made: int, elapsed_s: float) -> bool:
        """``made`` calls taking ``elapsed_s`` are enough."""
        return made >= self.maximum or (made >= self.minimum and elapsed_s >= self.seconds)


@dataclass(frozen=True)
class ProfileTarget:
    """One artifact to profile: its file, the inputs of one call, and how to name it."""

    path: Path
    feeds: Mapping[str, np.ndarray]
    label: str


def run_rounds(runs: Sequence[Callable[[], None]], calls: Calls, clock: Clock) -> int:
    """Warm up, then call every one of ``runs`` once a round until ``calls`` is satisfied,
    swapping the order every round; returns the profiled rounds.

    Args:
        runs: one call of each artifact.
        calls: how many rounds.
        clock: seconds (``time.perf_counter``); injected so the loop is tested without time.
    """
    for _ in range(calls.warmup):
        for run in runs:
            run()
    start = clock()
    made = 0
    while not calls.enough(made, clock() - start):
        for run in runs if made % 2 == 0 else list(reversed(runs)):
            run()
        made += 1
    return made


class _ProfiledSession:
    """An InferenceSession with the profiler on, writing into ``folder``."""

    def __init__(self, target: ProfileTarget, threads: int, folder: Path, index: int) -> None:
        self.target = target
        self.graph_path = folder / f"ran-{index}.onnx"
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(folder / f"trace-{index}")
        options.optimized_model_filepath = str(self.graph_path)
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # A spinning worker burns the core the next kernel needs (and on one thread there is
        # no worker to hand work to); the perf suite measures without it too.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Saving the optimised graph logs a warning that it holds hardware-specific layouts:
        # true and harmless (it is read back only for this session's node domains), and library
        # code leaves stderr to the CLI.
        options.log_severity_level = 3
        path = Path(target.path)
        if not path.is_file():
            raise ArtifactError(f"{path}: no such ONNX file")
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # ORT raises its own exception types for bad files
            reason = _first_line(err)
            raise ArtifactError(f"{path}: ONNX Runtime cannot load it: {reason}") from None
        self.feeds = dict(target.feeds)

    def call(self) -> None:
        try:
            self.session.run(None, self.feeds)
        except Exception as err:  # ORT's InvalidArgument, Fail, ...
            shapes = ", ".join(f"{k} {v.dtype}{list(v.shape)}" for k, v in self.feeds.items())
            raise InputMismatchError(
                f"{self.target.path}: ONNX Runtime cannot run it on {shapes}: {_first_line(err)}"
            ) from None

    def finish(self, warmup: int, threads: int) -> OpProfile:
        """Stop the profiler and read (then delete) its trace."""
        trace = Path(self.session.end_profiling())
        try:
            events = read_trace(trace)
        finally:
            trace.unlink(missing_ok=True)
        graph = read_ran_graph(self.graph_path)
        nodes = parse_trace(events, warmup, graph.domain_of)
        if not nodes:
            raise TraceError(f"{self.target.path}: the profiler timed no node")
        return OpProfile(
            label=self.target.label,
            nodes=nodes,
            calls=len(nodes[0].durations_us),
            threads=threads,
            source=str(self.target.path),
        )


def profile_interleaved(
    targets: Sequence[ProfileTarget],
    threads: int = 1,
    calls: Calls | None = None,
    clock: Clock = time.perf_counter,
) -> tuple[OpProfile, ...]:
    """Profile every target, one call of each per round (see the module's docstring).

    Args:
        targets: the artifacts, each with its inputs.
        threads: ONNX Runtime's intra-op threads per session.
        calls: how many calls (default ``Calls()``: at least 20 and 3 s).
        clock: seconds, for the time-based part of ``calls``.

    Raises:
        ArtifactError: a file is missing or ORT cannot load it.
        InputMismatchError: ORT cannot run a file on its feeds.
        TraceError: the profiler's output is not what was expected.
    """
    if threads < 1:
        raise ValueError(f"threads {threads}: expected at least 1")
    calls = calls or Calls()
    with tempfile.TemporaryDirectory(prefix="faceperf-explain-") as folder:
        sessions = [
            _ProfiledSession(target, threads, Path(folder), index)
            for index, target in enumerate(targets)
        ]
        run_rounds([s.call for s in sessions], calls, clock)
        return tuple(s.finish(calls.warmup, threads) for s in sessions)


def profile_onnx(
    path: Path,
    feeds: Mapping[str, np.ndarray],
    label: str,
    threads: int = 1,
    calls: Calls | None = None,
    clock: Clock = time.perf_counter,
) -> OpProfile:
    """Profile one ONNX artifact on ``feeds`` (see ``profile_interleaved``)."""
    (profile,) = profile_interleaved([ProfileTarget(path, feeds, label)], threads, calls, clock)
    return profile


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
