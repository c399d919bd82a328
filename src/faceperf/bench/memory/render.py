"""Tables and plots of the memory measurements, apart from the logic that makes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from faceperf.bench.memory.leak import LeakVerdict, MemoryTrace
from faceperf.bench.memory.peak import MemoryPeaks
from faceperf.bench.memory.size import ArtifactSize, Fp16Check, SizeChange

MIB = 2**20


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def memory_table(
    records: Sequence[MemoryPeaks], sizes: Mapping[tuple[str, str], ArtifactSize]
) -> str:
    """One markdown row per subject x variant: size on disk, floor, load and steady peaks
    (above the floor, then absolute), in MiB."""
    lines = [
        "| subject | variant | on disk | floor | load +floor | load peak | steady +floor "
        "| steady peak | load s | steady s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        size = sizes.get((r.subject, r.variant))
        load, steady = r.phase("load"), r.phase("steady")
        lines.append(
            f"| {r.subject} | {r.variant} | {_mib(size.bytes if size else None)} "
            f"| {_mib(r.floor_bytes)} | {_mib(load.above_floor_bytes)} | {_mib(load.peak_bytes)} "
            f"| {_mib(steady.above_floor_bytes)} | {_mib(steady.peak_bytes)} "
            f"| {r.load_s:.2f} | {r.steady_s:.2f} |"
        )
    methods = sorted({r.method for r in records})
    lines.append("")
    lines.append(f"MiB; read by {', '.join(methods) or 'nothing'}; one fresh process each.")
    return "\n".join(lines) + "\n"


def fp16_lines(checks: Sequence[Fp16Check]) -> str:
    return "".join(f"{c.describe()}\n" for c in checks)


def size_lines(changes: Sequence[SizeChange]) -> str:
    return "".join(f"{c.describe()}\n" for c in changes)


def leak_table(judged: Sequence[LeakVerdict]) -> str:
    """One markdown row per leak run: slopes in bytes per call, shape, verdict."""
    lines = [
        "| subject | calls | slope B/call | first half | last half (95 %) | growth MiB "
        "| shape | verdict |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for v in judged:
        lines.append(
            f"| {v.subject} | {v.calls} | {v.slope:+.0f} | {v.first_half:+.0f} "
            f"| {v.last_half:+.0f} ({v.last_half_low:+.0f} to {v.last_half_high:+.0f}) "
            f"| {v.growth_bytes / MIB:+.2f} | {v.shape} | {v.verdict} |"
        )
    return "\n".join(lines) + "\n"


def plot_traces(path: Path, runs: Sequence[tuple[MemoryTrace, LeakVerdict]]) -> Path:
    """``path`` (PNG): memory over calls, one panel per run, titled with its verdict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError("no leak runs to plot")
    fig, axes = plt.subplots(len(runs), 1, figsize=(8, 2.4 * len(runs)), squeeze=False)
    for ax, (trace, verdict) in zip(axes[:, 0], runs, strict=True):
        ax.plot(trace.calls, [b / MIB for b in trace.bytes], lw=1)
        ax.set_title(
            f"{trace.subject}: {verdict.verdict} ({verdict.shape}), last half "
            f"{verdict.last_half:+.0f} B/call",
            fontsize=9,
        )
        ax.set_ylabel("MiB")
    axes[-1, 0].set_xlabel("calls")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
