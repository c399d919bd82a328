"""Calibrated timings: a benchmark's rounds against the canary timed beside each."""

from __future__ import annotations

import pytest

from faceperf.bench.calibration import CalibratedTiming, canary_flops


def test_units_divide_each_round_by_its_own_canary() -> None:
    # The machine doubled its speed halfway: every round still costs 40 canary calls.
    timing = CalibratedTiming((0.4, 0.4, 0.2, 0.2), (0.01, 0.01, 0.005, 0.005), 1, 40, 1)
    assert timing.units == pytest.approx(40.0)
    assert timing.efficiency == pytest.approx(1.0)
    assert timing.per_call_ms == pytest.approx(300.0)


def test_per_frame_figures_divide_by_the_calls_of_a_round() -> None:
    timing = CalibratedTiming((0.08,) * 3, (0.01,) * 3, calls_per_round=4)
    assert timing.units == pytest.approx(2.0) and timing.per_call_ms == pytest.approx(20.0)
    assert timing.efficiency is None and timing.achieved_gflops is None  # no FLOP count


def test_the_canary_is_counted_like_a_model() -> None:
    # Four 3x3 convolutions, 64 -> 64 channels on 56x56, two FLOPs a multiply-add.
    assert canary_flops() == 4 * 2 * 64 * 64 * 9 * 56 * 56
    timing = CalibratedTiming.of((0.2,), (0.01,), work_flops=canary_flops())
    assert timing.calibrated_gflops == pytest.approx(canary_flops() / 0.01 / 1e9)
    assert timing.efficiency == pytest.approx(0.05)


def test_describe_says_absolute_time_calibration_and_efficiency() -> None:
    text = CalibratedTiming.of((0.5,), (0.0125,), work_flops=35 * 10**9).describe()
    assert text == (
        "500 ms a call; canary 12.5 ms (74 GFLOP/s); 40 canary calls; "
        "70.0 GFLOP/s, efficiency 0.946"
    )
    assert CalibratedTiming((0.5,)).describe() == "500 ms a call"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rounds_s": ()}, "expected positive durations"),
        ({"rounds_s": (0.1, 0.0)}, "expected positive durations"),
        ({"rounds_s": (0.1,), "canary_s": (0.1, 0.1)}, "2 canary calls for 1 rounds"),
        ({"rounds_s": (0.1,), "canary_s": (-1.0,)}, "canary calls (-1.0,)"),
        ({"rounds_s": (0.1,), "calls_per_round": 0}, "calls_per_round 0"),
        ({"rounds_s": (0.1,), "work_flops": 0}, "work_flops 0"),
    ],
)
def test_bad_timings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CalibratedTiming(**kwargs)
