"""The sustained run's logic on a fake clock: windows, minutes, the verdict, the machine state."""

from __future__ import annotations

import itertools
import subprocess

import pytest
from fake_time import FakeTime

from faceperf.bench.throughput.sustained import (
    SustainedRun,
    Window,
    machine_state,
    parse_pmset,
    run_sustained,
)
from faceperf.verdicts import Verdict


def _run(frame_s, seconds: float = 300.0, threshold: float = 0.1, **kwargs) -> SustainedRun:
    fake = FakeTime()
    step = fake.workload("frame", frame_s)
    return run_sustained(
        step,
        seconds,
        window_s=10.0,
        threshold=threshold,
        memory=lambda: 500 * 2**20,
        machine=lambda: "cpu 2450 MHz",
        clock=fake.clock,
        **kwargs,
    )


def test_a_steady_loop_passes_with_ten_second_windows():
    run = _run(itertools.repeat(0.5))  # 2 FPS for five minutes
    assert len(run.windows) == 30
    assert all(w.frames == 20 and w.seconds == pytest.approx(10.0) for w in run.windows)
    assert run.first_minute_fps == pytest.approx(2.0) == run.last_minute_fps
    assert run.verdict is Verdict.PASS and run.window_spread == pytest.approx(0.0)
    assert run.describe().startswith("pass: 2.00 FPS the first minute, 2.00 the last (+0.0 %")


def test_a_loop_that_slows_down_is_throttled_and_judged_on_its_slower_minute():
    # 0.5 s a frame for three minutes, then 0.625 s: the last minute runs at 1.6 FPS (-20 %).
    run = _run(itertools.chain(itertools.repeat(0.5, 360), itertools.repeat(0.625)))
    assert run.first_minute_fps == pytest.approx(2.0)
    assert run.last_minute_fps == pytest.approx(1.6)
    assert run.drop == pytest.approx(0.2)
    assert run.verdict is Verdict.THROTTLED and run.verdict.blocks()
    assert run.sustained_fps == pytest.approx(1.6)
    assert _run(itertools.chain(itertools.repeat(0.5, 360), itertools.repeat(0.52))).verdict is (
        Verdict.PASS
    )


def test_the_canary_and_readers_run_between_windows_and_give_canary_units():
    fake = FakeTime()
    step = fake.workload("frame", itertools.repeat(0.5))
    # Binary fractions of a second: the fake clock's sums stay exact.
    canary = fake.workload("canary", itertools.repeat(0.015625))
    seen = []

    def timed_canary() -> float:
        canary()
        return 0.015625

    run = run_sustained(
        step, 60.0, 10.0, memory=lambda: 1, machine=lambda: "m", canary=timed_canary,
        clock=fake.clock, on_window=seen.append,
    )  # fmt: skip
    assert len(seen) == 6 and all(w.canary_s == 0.015625 for w in run.windows)
    # Each window holds its frames only: the canary's 16 ms sits between windows.
    assert all(w.seconds == pytest.approx(10.0) for w in run.windows)
    assert run.canary_units() == pytest.approx(32.0)  # 0.5 s a frame / 15.6 ms
    assert fake.calls.count("canary") == 6


@pytest.mark.parametrize(("seconds", "window_s"), [(0, 10), (60, 0), (-1, 10)])
def test_a_run_needs_a_positive_length_and_window(seconds, window_s):
    with pytest.raises(ValueError, match="expected positive numbers"):
        run_sustained(lambda: None, seconds, window_s)


def test_a_short_run_compares_its_first_and_last_window():
    windows = (Window(0, 10, 20, 1, None, "m"), Window(10, 10, 16, 1, None, "m"))
    run = SustainedRun(windows, threshold=0.1)
    assert run.drop == pytest.approx(0.2) and run.verdict is Verdict.THROTTLED
    with pytest.raises(ValueError, match="at least one window"):
        SustainedRun(())


def test_linux_reads_cpufreq_or_says_it_is_not_exposed(tmp_path):
    for cpu, khz in (("cpu0", "2400000"), ("cpu1", "2600000")):
        folder = tmp_path / cpu / "cpufreq"
        folder.mkdir(parents=True)
        (folder / "scaling_cur_freq").write_text(khz + "\n")
    assert machine_state(cpufreq=tmp_path, platform="linux") == "cpu 2500 MHz"
    empty = tmp_path / "none"
    empty.mkdir()
    said = machine_state(cpufreq=empty, platform="linux")
    assert said.startswith("cpu clock not exposed (no cpufreq")


PMSET = """Note: No thermal warning level has been recorded
Note: No performance warning level has been recorded
2026-12-06 10:00:00 +0000 CPU Power notify
\tCPU_Scheduler_Limit \t= 100
\tCPU_Available_CPUs \t= 10
\tCPU_Speed_Limit \t= 100
"""


def test_macos_reads_pmset_therm():
    def run(command, **_):
        assert command == ["pmset", "-g", "therm"]
        return subprocess.CompletedProcess(command, 0, stdout=PMSET, stderr="")

    said = machine_state(run=run, platform="darwin")
    assert said == "thermal: CPU_Scheduler_Limit 100, CPU_Available_CPUs 10, CPU_Speed_Limit 100"
    assert parse_pmset("Note: No thermal warning level has been recorded\n") == (
        "thermal: No thermal warning level has been recorded"
    )
