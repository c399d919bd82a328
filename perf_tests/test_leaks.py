"""Leaks: each model 2000 calls, the MTCNN cascade and the Face Mirror pipeline 1000 frames
(the 1080p clip looped), each in a fresh process, resident memory sampled throughout and judged
on a robust slope after warm-up (bench/memory/leak.py: an arena that grows and then plateaus
passes, memory still growing at the end fails). The plot of every run goes in the report folder.

About 45 minutes on a 2-core VM: marked nightly, run only with `-m nightly` (make nightly).
"""

from __future__ import annotations

import pytest

from faceperf.bench.memory.longrun import MTCNN_FRAMES, PIPELINE_FRAMES, leak_runs
from faceperf.bench.memory.peak import MTCNN, PIPELINE
from faceperf.bench.memory.render import plot_traces
from faceperf.models.registry import default_registry
from faceperf.verdicts import Verdict

pytestmark = pytest.mark.nightly


@pytest.mark.parametrize("subject", [*default_registry().names(), MTCNN, PIPELINE])
def test_no_leak_over_a_long_run(
    artifacts_dir, perf_threads, perf_report_dir, budget_report, subject
):
    models = [] if subject in (MTCNN, PIPELINE) else [subject]
    (run,) = leak_runs(
        artifacts_dir,
        models,
        threads=perf_threads,
        frames=PIPELINE_FRAMES if subject == PIPELINE else None,
        mtcnn_frames=MTCNN_FRAMES if subject == MTCNN else None,
    )
    plot = plot_traces(perf_report_dir / f"leak-{subject}.png", [(run.trace, run.verdict)])
    budget_report(f"{run.verdict.describe()}; plot {plot}")
    assert run.verdict.verdict is not Verdict.FAIL, run.verdict.describe()
