"""Measuring reference against candidate in paired rounds, judged sequentially, in one process.

Every benchmark is warmed up, then measured to its first look and judged; the ones still
undecided get the rounds of their next look, round-robin over benchmarks, until each decides, its
looks run out, or the time budget ends. Round-robin keeps a slow, borderline benchmark from
eating the budget of the others, and spreads each benchmark's rounds over the run, so a machine
that changes pace mid-run is sampled in every look.

A round is a block of four samples, ABBA or BAAB (drawn at random from a seeded generator), and
yields one ratio: the candidate's two samples over the reference's two. Within a block each side
runs once first and once second, so an order effect (the second of two session creations reuses
the first one's freed memory; the first call after the other side's finds a cold cache) cancels
inside every block instead of only on average, and a linear drift over the block adds the same
to both sides. In a duet (``Pairing.together``, duet.py) a round is two samples of both sides
at once, on two cores, swapped between the two: the same ratio of sums, each side once on each
core.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from faceperf.bench.ab.modes import ALTERNATING, DUET
from faceperf.bench.ab.stats import LookSchedule, RatioInterval, judge, ratio_interval
from faceperf.verdicts import Verdict

Clock = Callable[[], float]
Call = Callable[[], object]
# (inner, swapped) -> (reference, candidate) seconds per call, both sides timed at the same
# moment on two cores, swapped or not (duet.DuetWorkers.together).
Together = Callable[[int, bool], tuple[float, float]]

# A sample shorter than this is several calls timed together: a timer read costs tens of
# nanoseconds and the scheduler's tick can land inside any call, so sub-millisecond calls timed
# one at a time measure the clock as much as the model.
MIN_SAMPLE_S = 0.005
# The first look holds about this much measuring, within the round limits below: cheap benchmarks
# start with more rounds (their noise is relatively larger), expensive ones with fewer.
FIRST_LOOK_S = 2.0
FIRST_ROUNDS = (8, 32)


@dataclass(frozen=True)
class Pairing:
    """One benchmark: the same work on the reference and on the candidate artifacts.

    Args:
        name: the benchmark (``star-optimized``, ``star-optimized-load``, ``mtcnn``, ``pipeline``).
        reference: one call on the reference artifacts.
        candidate: the same call on the candidate artifacts.
        threshold: the relative change that matters for this benchmark.
        warmup: untimed calls of each side before the first round (beyond any warm-up the
            calls had when they were made).
        together: set for a duet: times both sides at once, and every sample comes from it
            (``reference`` and ``candidate`` then only warm up).
    """

    name: str
    reference: Call
    candidate: Call
    threshold: float
    warmup: int = 1
    together: Together | None = None

    @property
    def mode(self) -> str:
        """How its rounds are taken: ``duet`` or ``alternating``."""
        return DUET if self.together is not None else ALTERNATING


@dataclass
class _Progress:
    pairing: Pairing
    schedule: LookSchedule
    inner: int
    reference_s: list[float] = field(default_factory=list)
    candidate_s: list[float] = field(default_factory=list)
    look: int = -1
    interval: RatioInterval | None = None
    verdict: Verdict = Verdict.UNDECIDED

    @property
    def rounds(self) -> int:
        return len(self.reference_s) // 2

    @property
    def open(self) -> bool:
        return self.verdict is Verdict.UNDECIDED and self.look + 1 < self.schedule.looks


@dataclass(frozen=True)
class Outcome:
    """What was measured and decided for one benchmark.

    Args:
        name, threshold: as in :class:`Pairing`.
        verdict: slower / same / faster / undecided.
        interval: candidate / reference with its interval (None: not one round measured).
        reference_s, candidate_s: per-call seconds of every sample, two per round in the order
            taken (a sample is the mean of ``inner`` calls).
        inner: calls per sample.
        looks: looks taken.
        schedule: the look schedule it was judged on.
    """

    name: str
    threshold: float
    verdict: Verdict
    interval: RatioInterval | None
    reference_s: tuple[float, ...]
    candidate_s: tuple[float, ...]
    inner: int
    looks: int
    schedule: LookSchedule

    @property
    def rounds(self) -> int:
        return len(self.reference_s) // 2


@dataclass(frozen=True)
class SequentialRun:
    """Every benchmark's outcome, and whether the time budget ended with any undecided."""

    outcomes: tuple[Outcome, ...]
    timed_out: bool
    elapsed_s: float


def calibrate_inner(call: Call, clock: Clock, min_sample_s: float = MIN_SAMPLE_S) -> int:
    """Calls per sample so that one sample lasts at least ``min_sample_s``, from one timed call."""
    start = clock()
    call()
    return inner_for(clock() - start, min_sample_s)


def inner_for(once_s: float, min_sample_s: float = MIN_SAMPLE_S) -> int:
    """Calls per sample so that one sample lasts at least ``min_sample_s``, for a call that
    took ``once_s`` seconds."""
    if once_s >= min_sample_s:
        return 1
    return math.ceil(min_sample_s / max(once_s, 1e-7))


def first_look_rounds(call_s: float) -> int:
    """Rounds of the first look for a benchmark whose call takes ``call_s`` seconds."""
    wanted = int(FIRST_LOOK_S / max(4 * call_s, 1e-9))
    return max(FIRST_ROUNDS[0], min(FIRST_ROUNDS[1], wanted))


def measure_sequential(
    pairings: Sequence[Pairing],
    max_time_s: float,
    seed: int = 0,
    looks: int | None = None,
    clock: Clock = time.perf_counter,
    on_look: Callable[[Outcome], None] | None = None,
) -> SequentialRun:
    """Measure every pairing until each decides, runs out of looks, or ``max_time_s`` passes.

    Args:
        pairings: the benchmarks, in the order they are first measured.
        max_time_s: the time budget of the whole run, warm-up included (seconds, > 0).
        seed: seeds the order within each round.
        looks: the most looks per benchmark (default: the schedule's).
        clock: seconds; injected so tests control time.
        on_look: called with the benchmark's state after each of its looks (progress display).
    """
    if not (isinstance(max_time_s, int | float) and math.isfinite(max_time_s) and max_time_s > 0):
        raise ValueError(f"max_time_s {max_time_s!r}: expected a positive number of seconds")
    names = [p.name for p in pairings]
    if len(set(names)) != len(names):
        raise ValueError(f"benchmark names must be unique: {names}")
    rng = np.random.default_rng(seed)
    start = clock()
    deadline = start + max_time_s
    states: list[_Progress] = []
    timed_out = False
    for pairing in pairings:
        if clock() >= deadline:
            timed_out = True
            states.append(_Progress(pairing, LookSchedule(FIRST_ROUNDS[0]), inner=1))
            continue
        for _ in range(pairing.warmup):
            pairing.reference()
            pairing.candidate()
        if pairing.together is None:
            inner = calibrate_inner(pairing.reference, clock)
            call_s = _sample(pairing.reference, inner, clock)
        else:
            inner = inner_for(pairing.together(1, False)[0])
            call_s = pairing.together(inner, True)[0]
        extra = {} if looks is None else {"looks": looks}
        states.append(_Progress(pairing, LookSchedule(first_look_rounds(call_s), **extra), inner))
    while not timed_out and any(state.open for state in states):
        for state in states:
            if not state.open:
                continue
            target = state.schedule.rounds_at(state.look + 1)
            before = state.rounds
            while state.rounds < target:
                if clock() >= deadline:
                    timed_out = True
                    break
                _round(state, rng, clock)
            if state.rounds > before and state.rounds >= 2:
                _judge(state)
                if on_look is not None:
                    on_look(_outcome(state))
            if timed_out:
                break
    # The budget "cut the run short" only if it left something undecided.
    cut_short = timed_out and any(s.verdict is Verdict.UNDECIDED for s in states)
    return SequentialRun(tuple(_outcome(s) for s in states), cut_short, clock() - start)


def _round(state: _Progress, rng: np.random.Generator, clock: Clock) -> None:
    pairing = state.pairing
    if pairing.together is not None:
        # Each side once on each core, in a random order of the two arrangements.
        first = bool(rng.random() < 0.5)
        for swapped in (first, not first):
            reference, candidate = pairing.together(state.inner, swapped)
            state.reference_s.append(reference)
            state.candidate_s.append(candidate)
        return
    sides = [(pairing.reference, state.reference_s), (pairing.candidate, state.candidate_s)]
    if rng.random() < 0.5:
        sides.reverse()
    for call, samples in (*sides, *reversed(sides)):
        samples.append(_sample(call, state.inner, clock))


def _sample(call: Call, inner: int, clock: Clock) -> float:
    start = clock()
    for _ in range(inner):
        call()
    return (clock() - start) / inner


def _judge(state: _Progress) -> None:
    # A look cut short by the time budget still counts as one of the schedule's looks, so its
    # share of the error rate is the same as a full one's.
    state.look += 1
    # One ratio per round, of the round's sums: a per-sample ratio would keep what the round
    # exists to cancel (which side ran first; in a duet, which side had the faster core) and
    # count a round's two samples, taken at one moment, as two independent draws.
    state.interval = ratio_interval(
        block_sums(state.reference_s), block_sums(state.candidate_s), state.schedule.confidence
    )
    state.verdict = judge(state.interval, state.pairing.threshold)


def block_sums(samples: Sequence[float]) -> list[float]:
    """Each round's two samples of one side, added: the durations a round's ratio compares."""
    return [samples[i] + samples[i + 1] for i in range(0, len(samples) - 1, 2)]


def _outcome(state: _Progress) -> Outcome:
    return Outcome(
        name=state.pairing.name,
        threshold=state.pairing.threshold,
        verdict=state.verdict,
        interval=state.interval,
        reference_s=tuple(state.reference_s),
        candidate_s=tuple(state.candidate_s),
        inner=state.inner,
        looks=state.look + 1,
        schedule=state.schedule,
    )
