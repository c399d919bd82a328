"""The checklist's "6.7-7.6 FPS sustained" and "no throttling during 5-minute continuous
processing": the Face Mirror pipeline run without pause for five minutes on the looped 1080p
clip, frame rate, memory, the canary and the machine's clock or thermal state per 10-second
window (bench/throughput/sustained.py), the plot in the report folder.

It fails when the last minute runs slower than the first by more than the threshold
(``throttled``), or when the slower minute breaks the sustained budget (absolute on Apple
Silicon, in canary calls elsewhere). Marked ``sustained``: run only when selected (`make
nightly`), never in `make test` or `make perf`.
"""

from __future__ import annotations

import pytest

from faceperf.bench.budgets import load_budgets
from faceperf.bench.calibration import CalibratedTiming
from faceperf.bench.gate.paths import budgets_path
from faceperf.bench.memory.workloads import pipeline_step
from faceperf.bench.throughput.sustained import MINUTE_S, run_sustained
from faceperf.bench.throughput.sustained_plot import plot_sustained
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.backends import parse_backend
from faceperf.verdicts import Verdict

pytestmark = pytest.mark.sustained
MINUTES = 5
BUDGET = "pipeline sustained frame rate"


def test_the_pipeline_sustains_its_frame_rate_for_five_minutes(
    artifacts_dir, perf_profile, perf_threads, perf_canary, perf_report_dir, budget_report
):
    variant = "coreml" if parse_backend(perf_profile.backend).is_coreml else "optimized"
    step = pipeline_step(ArtifactRef(artifacts_dir, variant, perf_profile.backend, perf_threads))
    step()  # the first frame opens the arena and detects: not the loop's steady work
    run = run_sustained(step, MINUTES * MINUTE_S, canary=perf_canary.time_once)
    plot = plot_sustained(perf_report_dir / "sustained.png", run)
    # The slower minute's windows as rounds: one frame's time each, beside its canary.
    judged = run.sustained_windows()
    timing = CalibratedTiming.of(
        [w.seconds / w.frames for w in judged], [w.canary_s for w in judged]
    )
    budget = load_budgets(budgets_path()).budget_for(perf_profile.name, BUDGET)
    line = f"{BUDGET}: {run.describe()}; {timing.describe()}; plot {plot}"
    if budget is None:
        budget_report(f"{line}; no budget for {perf_profile.name}")
    else:
        budget_report(f"{line}; budget {budget.describe()}: {_word(budget.allows(timing))}")
    assert run.verdict is not Verdict.THROTTLED, run.describe()
    if budget is None:
        pytest.skip(f"no '{BUDGET}' budget for profile {perf_profile.name}")
    assert budget.allows(timing), (
        f"{BUDGET} on {perf_profile.name}: {timing.describe()}; breaks the budget "
        f"{budget.describe()} ({budget.reason})"
    )


def _word(passed: bool) -> str:
    return "pass" if passed else "FAIL"
