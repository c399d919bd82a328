"""bench/memory/render.py: the table and the plot."""

from __future__ import annotations

from faceperf.bench.memory.leak import LeakPolicy, judge_leak, sample_run
from faceperf.bench.memory.peak import MemoryPeaks
from faceperf.bench.memory.render import leak_table, memory_table, plot_traces
from faceperf.bench.memory.size import ArtifactSize

MIB = 2**20


def _record() -> MemoryPeaks:
    return MemoryPeaks(
        "star",
        "optimized",
        "ort-cpu",
        None,
        5,
        "fake",
        50 * MIB,
        220 * MIB,
        218 * MIB,
        300 * MIB,
        297 * MIB,
        0.25,
        3.0,
    )


def test_the_table_has_size_floor_and_both_phases_in_mib():
    sizes = {("star", "optimized"): ArtifactSize("star", "optimized", 55 * MIB, 1)}
    table = memory_table([_record()], sizes)
    assert (
        "| star | optimized | 55.0 | 50.0 | 170.0 | 220.0 | 250.0 | 300.0 | 0.25 | 3.00 |" in table
    )
    assert "read by fake" in table


def test_the_leak_plot_and_table(tmp_path):
    calls = iter(range(10**6))
    trace = sample_run("x", lambda: next(calls), 400, 2, lambda: 10**8, "fake")
    verdict = judge_leak(trace, LeakPolicy())
    path = plot_traces(tmp_path / "leak.png", [(trace, verdict)])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| x | 400 | +0 | +0 | +0 (+0 to +0) | +0.00 | flat | pass |" in leak_table([verdict])
