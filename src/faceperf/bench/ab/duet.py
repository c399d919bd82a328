"""Duet measurement: the reference and the candidate timed at the same moment, each in a worker
process of its own pinned to a core of its own (Bulej et al., "Duet Benchmarking: Improving
Measurement Accuracy in the Cloud", ICPE 2020).

Alternating calls on one core leave each pair exposed to whatever the machine did between its
two halves; a 0.4 s STAR call or a whole pipeline frame is long enough for that to differ. In a
duet both halves run through the same moment, so a neighbour's burst, a frequency change or a
host's steal weighs on both. Each worker opens every benchmark of its side once (sessions,
inputs: the same calls the alternating mode makes, ``pairings.side_call``); then, for every
sample, both are told their core (a worker that moves runs one untimed call there first, to warm
the new core's caches), wait at a shared barrier and time ``inner`` calls. A round is two such
samples, the cores swapped between them, so neither side owns the faster core and the round's
ratio compares each side once on each core, as an ABBA block compares each side once first and
once second.

One intra-op thread per session: ONNX Runtime then creates no intra-op pool (checked: a
session of one thread adds no OS thread, one of two adds one), so there is no worker thread to
spin and steal the other side's core. Pinning needs ``os.sched_setaffinity`` (Linux); macOS
offers no way to pin a process to a core, and on the Core ML backend both sides would share one
GPU and Neural Engine, so there the gate measures alternating and says why (``duet_unavailable``).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from types import TracebackType
from typing import TYPE_CHECKING

from faceperf.errors import FaceperfError

if TYPE_CHECKING:
    from faceperf.bench.ab.pairings import AbRequest

REFERENCE, CANDIDATE = 0, 1
# Opening every benchmark of a side (up to 14, three sessions each) takes seconds; a worker
# silent for this long has hung.
READY_TIMEOUT_S = 600.0
# Both workers reach the barrier within a pipe message of each other; one that does not arrive
# in this time has died, and the other must not wait for ever.
BARRIER_TIMEOUT_S = 60.0


class DuetError(FaceperfError):
    """A duet worker failed: it could not open its side, or a call raised (the worker's line)."""


def duet_unavailable(request: AbRequest) -> str | None:
    """Why this request cannot be measured in a duet, or None when it can."""
    if request.threads != 1:
        return f"{request.threads} intra-op threads a session: a duet pins each side to one core"
    if request.backend != "ort-cpu":
        return (
            f"backend {request.backend}: both sides would share one accelerator, so they "
            "would slow each other down instead of sharing the machine's noise"
        )
    if not hasattr(os, "sched_setaffinity"):
        return (
            "this OS cannot pin a process to a core (os.sched_setaffinity is Linux's); "
            "unpinned, the scheduler may put both sides on one core"
        )
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return f"this process may run on {len(cores)} core: a duet needs two"
    return None


def duet_cores() -> tuple[int, int]:
    """The two cores a duet pins its workers to: the first two this process may use."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise DuetError(f"this process may run on {len(cores)} core: a duet needs two")
    return cores[0], cores[1]


class DuetWorkers:
    """Two worker processes, one per side, each holding every named benchmark of its side.

    Use as a context manager: the workers stop (and are killed if they hang) on exit.

    Raises (on entry):
        DuetError: a worker could not open its side (the worker's one-line reason, e.g. an
            artifact failing its sha256), or did not answer within ``READY_TIMEOUT_S``.
    """

    def __init__(
        self, request: AbRequest, names: Sequence[str], cores: tuple[int, int] | None = None
    ) -> None:
        self.request = request
        self.names = tuple(names)
        self.cores = cores or duet_cores()
        self._processes: list[multiprocessing.process.BaseProcess] = []
        self._pipes: list[Connection] = []
        # A worker's call and the parent's reading of the other's answer must not interleave.
        self._lock = threading.Lock()
        # How far apart (s) the two sides of the last sample started (CLOCK_MONOTONIC is one
        # clock for every process on Linux): what the barrier achieves.
        self.last_skew_s = math.nan

    def __enter__(self) -> DuetWorkers:
        # spawn: a fork would copy the parent's ONNX Runtime sessions and thread state.
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(2)
        for side in (REFERENCE, CANDIDATE):
            parent, child = context.Pipe()
            process = context.Process(
                target=_serve,
                args=(self.request, self.names, side, self.cores[side], child, barrier),
                name=f"faceperf-duet-{'reference' if side == REFERENCE else 'candidate'}",
                daemon=True,
            )
            process.start()
            child.close()
            self._processes.append(process)
            self._pipes.append(parent)
        try:
            for pipe in self._pipes:
                self._answer(pipe, READY_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def call(self, name: str, side: int) -> Callable[[], object]:
        """One untimed call of ``name`` on one side, in its worker (warm-up)."""

        def run() -> object:
            with self._lock:
                self._pipes[side].send(("call", name))
                return self._answer(self._pipes[side], BARRIER_TIMEOUT_S + READY_TIMEOUT_S)

        return run

    def together(self, name: str) -> Callable[[int, bool], tuple[float, float]]:
        """``sample(inner, swapped)``: both sides time ``inner`` calls of ``name`` at the same
        moment, the reference on the first core (the second when ``swapped``); seconds per
        call, (reference, candidate), each as its worker's clock measured it."""

        def sample(inner: int, swapped: bool) -> tuple[float, float]:
            cores = self.cores[::-1] if swapped else self.cores
            with self._lock:
                for side, pipe in enumerate(self._pipes):
                    pipe.send(("time", name, inner, cores[side]))
                (reference, start), (candidate, other) = (
                    self._answer(pipe, BARRIER_TIMEOUT_S + READY_TIMEOUT_S) for pipe in self._pipes
                )
            self.last_skew_s = abs(start - other)
            return float(reference), float(candidate)

        return sample

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(BrokenPipeError, OSError):  # the worker is gone already
                pipe.send(("stop",))
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        for pipe in self._pipes:
            pipe.close()
        self._processes, self._pipes = [], []

    def _answer(self, pipe: Connection, timeout_s: float) -> object:
        if not pipe.poll(timeout_s):
            raise DuetError(f"a duet worker did not answer within {timeout_s:.0f} s")
        try:
            kind, value = pipe.recv()
        except EOFError:
            raise DuetError("a duet worker died without a word (killed, out of memory)") from None
        if kind == "error":
            raise DuetError(str(value))
        return value


def _serve(
    request: AbRequest,
    names: Sequence[str],
    side: int,
    core: int,
    pipe: Connection,
    barrier: multiprocessing.synchronize.Barrier,
) -> None:
    """A worker: open every benchmark of one side, then answer the parent until told to stop."""
    # imported here: the worker is a fresh interpreter, and pairings imports this module.
    from faceperf.bench.ab.pairings import side_call

    try:
        os.sched_setaffinity(0, {core})
        calls = {name: side_call(request, name, side) for name in names}
    except Exception as error:  # reported to the parent, which raises it as one line
        pipe.send(("error", _one_line(error)))
        return
    pipe.send(("ready", None))
    while True:
        message = pipe.recv()
        if message[0] == "stop":
            return
        try:
            if message[0] == "call":
                calls[message[1]]()
                pipe.send(("done", None))
                continue
            _, name, inner, core = message
            call = calls[name]
            if os.sched_getaffinity(0) != {core}:
                os.sched_setaffinity(0, {core})
                # The first call on a core it just moved to finds that core's caches cold: timed,
                # it gave STAR's A/A round ratios an SD of 0.080 (robust 0.020); with this
                # untimed call first, 0.024 (robust 0.017) (docs/merge-gate.md, "Duet").
                call()
            barrier.wait(BARRIER_TIMEOUT_S)
            start = time.perf_counter()
            for _ in range(inner):
                call()
            pipe.send(("time", ((time.perf_counter() - start) / inner, start)))
        except Exception as error:
            pipe.send(("error", _one_line(error)))
            return


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"duet worker: {text[0] if text else type(error).__name__}"
