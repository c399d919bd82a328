"""Duet measurement: a round is two simultaneous samples with the cores swapped (on an injected
clock: a faster core cancels, a slowdown is caught, noise both sides share cancels), each
benchmark's mode comes from budgets.toml or --mode, a duet is refused where it cannot be one,
and the real workers pin each side to its core, start together and report failures in one line."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from fake_time import FakeTime

from faceperf.bench.ab.duet import DuetError, DuetWorkers, duet_unavailable
from faceperf.bench.ab.modes import ALTERNATING, AUTO, DUET
from faceperf.bench.ab.pairings import AbRequest, pairings
from faceperf.bench.ab.run import choose_modes
from faceperf.bench.ab.sequential import Pairing, measure_sequential
from faceperf.bench.budgets import Budgets, BudgetsError, load_budgets
from faceperf.cli import main
from faceperf.verdicts import Verdict

LINUX_TWO_CORES = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2


class FakeDuet:
    """Two sides on two cores of different speed, timed together on a fake clock: the machine's
    shared noise (one draw per sample) scales both sides alike; each side adds its own."""

    def __init__(
        self,
        time: FakeTime,
        slowdown: float,
        core_speed: tuple[float, float] = (1.0, 1.0),
        shared_sigma: float = 0.0,
        own_sigma: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.time, self.slowdown, self.core_speed = time, slowdown, core_speed
        self.shared_sigma, self.own_sigma = shared_sigma, own_sigma
        self.rng = np.random.default_rng(seed)
        self.arrangements: list[bool] = []

    def __call__(self, inner: int, swapped: bool) -> tuple[float, float]:
        self.arrangements.append(swapped)
        shared = math.exp(self.rng.normal(0, self.shared_sigma))
        own = np.exp(self.rng.normal(0, self.own_sigma, 2))
        reference_core, candidate_core = self.core_speed[::-1] if swapped else self.core_speed
        reference = 0.1 * reference_core * shared * own[0]
        candidate = 0.1 * self.slowdown * candidate_core * shared * own[1]
        self.time.now += inner * max(reference, candidate)
        return reference, candidate


def _duet_pairing(duet: FakeDuet, threshold: float = 0.03) -> Pairing:
    def untimed() -> None:
        pass

    return Pairing("star-optimized", untimed, untimed, threshold, together=duet)


def test_a_round_puts_each_side_once_on_each_core_in_a_drawn_order():
    time = FakeTime()
    duet = FakeDuet(time, 1.0)
    measure_sequential([_duet_pairing(duet)], 1000.0, clock=time.clock, looks=1)
    rounds = duet.arrangements[2:]  # after the calibration and the sizing sample
    pairs = [tuple(rounds[i : i + 2]) for i in range(0, len(rounds), 2)]
    assert set(pairs) == {(False, True), (True, False)}
    assert _duet_pairing(duet).mode == DUET
    assert Pairing("m", print, print, 0.03).mode == ALTERNATING


def test_a_faster_core_cancels_and_a_slowdown_is_caught():
    # core 0 is 15 % faster than core 1: a duet that kept each side on its core would call an
    # unchanged candidate 15 % slower
    time = FakeTime()
    same = FakeDuet(time, 1.0, core_speed=(0.85, 1.0))
    (outcome,) = measure_sequential([_duet_pairing(same)], 1000.0, clock=time.clock).outcomes
    assert outcome.verdict is Verdict.SAME, outcome.interval
    slowed = FakeDuet(time, 1.05, core_speed=(0.85, 1.0), seed=1)
    (outcome,) = measure_sequential([_duet_pairing(slowed)], 1000.0, clock=time.clock).outcomes
    assert outcome.verdict is Verdict.SLOWER, outcome.interval


def test_noise_both_sides_share_cancels_in_a_duet():
    # the machine moves each sample by 10 % (both sides at once): a 5 % slowdown is still
    # decided at the first look
    time = FakeTime()
    duet = FakeDuet(time, 1.05, shared_sigma=0.10, own_sigma=0.005, seed=3)
    (outcome,) = measure_sequential([_duet_pairing(duet)], 1000.0, clock=time.clock).outcomes
    assert outcome.verdict is Verdict.SLOWER and outcome.looks == 1


def _request(tmp_path: Path, **kwargs: object) -> AbRequest:
    return AbRequest(tmp_path / "a", tmp_path / "b", **kwargs)


def test_modes_come_from_the_budgets_and_session_creation_is_never_a_duet(tmp_path):
    budgets = Budgets("t", ab_modes={"star-*": DUET, "pipeline": DUET})
    names = ["star-optimized", "star-optimized-load", "mtl-optimized", "pipeline"]
    modes, why = choose_modes(_request(tmp_path), budgets, names)
    if LINUX_TWO_CORES:
        assert why is None
        assert modes == {
            "star-optimized": DUET,
            "star-optimized-load": ALTERNATING,
            "mtl-optimized": ALTERNATING,
            "pipeline": DUET,
        }
    everything, _ = choose_modes(_request(tmp_path, mode=ALTERNATING), budgets, names)
    assert set(everything.values()) == {ALTERNATING}


def test_where_a_duet_cannot_be_one_auto_alternates_saying_why_and_duet_is_refused(tmp_path):
    budgets = Budgets("t", ab_default_mode=DUET)
    threaded = _request(tmp_path, threads=2)
    assert "2 intra-op threads" in duet_unavailable(threaded)
    modes, why = choose_modes(threaded, budgets, ["star-optimized"])
    assert modes == {"star-optimized": ALTERNATING} and "2 intra-op threads" in why
    with pytest.raises(Exception, match=r"^--mode duet: 2 intra-op threads"):
        choose_modes(_request(tmp_path, threads=2, mode=DUET), budgets, ["star-optimized"])
    assert "accelerator" in duet_unavailable(_request(tmp_path, backend="coreml:ALL"))


def test_a_mode_in_the_budgets_file_is_checked_where_it_is_read(tmp_path):
    path = tmp_path / "budgets.toml"
    path.write_text('[ab.modes]\n"star-*" = "duett"\n')
    with pytest.raises(BudgetsError, match=r"\[ab.modes\] 'star-\*' = 'duett': expected one of"):
        load_budgets(path)
    path.write_text('[ab]\ndefault_mode = "duet"\n[ab.modes]\n"mtl-*" = "alternating"\n')
    budgets = load_budgets(path)
    assert budgets.ab_mode_for("star-optimized") == DUET
    assert budgets.ab_mode_for("mtl-optimized") == ALTERNATING
    with pytest.raises(ValueError, match="expected one of auto"):
        _request(tmp_path, mode="both")
    assert _request(tmp_path).mode == AUTO


def test_the_cli_refuses_a_duet_it_cannot_run_in_one_line(tmp_path, capsys, artifacts_dir):
    code = main(
        [
            "ab",
            "--reference",
            str(artifacts_dir),
            "--candidate",
            str(artifacts_dir),
            "--models",
            "mtl",
            "--variants",
            "optimized",
            "--threads",
            "2",
            "--mode",
            "duet",
            "--no-memory",
            "--report",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].endswith(
        "--mode duet: 2 intra-op threads a session: a duet pins each side to one core"
    )
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(not LINUX_TWO_CORES, reason="a duet needs Linux and two cores")
def test_real_workers_pin_each_side_to_its_core_and_start_together(artifacts_dir):
    request = AbRequest(artifacts_dir, artifacts_dir, variants=("optimized",))
    name = "mtcnn_rnet-optimized"
    with DuetWorkers(request, [name]) as workers:
        (pairing,) = pairings(request, [name], lambda _: 0.05, workers)
        pinned = [_allowed_cpus(p.pid) for p in workers._processes]
        assert pinned == [{workers.cores[0]}, {workers.cores[1]}]
        pairing.reference()  # an untimed call in the reference's worker
        skews = []
        for swapped in (False, True, False, True):
            reference, candidate = pairing.together(20, swapped)
            assert 0 < reference < 0.05 and 0 < candidate < 0.05
            skews.append(workers.last_skew_s)
            cores = workers.cores[::-1] if swapped else workers.cores
            assert [_allowed_cpus(p.pid) for p in workers._processes] == [{c} for c in cores]
        # the barrier lets both go within a scheduler tick, not a call apart
        assert np.median(skews) < 0.002, skews
    assert all(not p.is_alive() for p in workers._processes) or not workers._processes


@pytest.mark.skipif(not LINUX_TWO_CORES, reason="a duet needs Linux and two cores")
def test_a_side_that_cannot_open_is_one_line_and_no_worker_is_left(tmp_path, artifacts_dir):
    request = AbRequest(artifacts_dir, tmp_path / "missing", variants=("optimized",))
    workers = DuetWorkers(request, ["mtl-optimized"])
    with pytest.raises(DuetError, match=r"^duet worker: .*missing") as caught:
        workers.__enter__()
    assert "\n" not in str(caught.value)
    assert workers._processes == []


def _allowed_cpus(pid: int) -> set[int]:
    return set(os.sched_getaffinity(pid))
