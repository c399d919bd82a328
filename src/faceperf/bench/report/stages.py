"""The pipeline's stage breakdown in a perf report: stage_profile.txt and stage_breakdown.png.

The pipeline benchmark stores every stage call's duration in its ``extra_info`` (see
:func:`stage_record`), so both files are rebuilt from results.json alone: ``faceperf report``
regenerates them without re-running anything. The text is the stage profiler's own layout
(the Face Mirror application's), one section per benchmark that recorded stages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from faceperf.bench.gate.storage import BenchmarkRun, short_name
from faceperf.fileio import atomic_write_bytes
from faceperf.pipeline.profiler import CATEGORIES, StageProfiler

STAGE_KEY = "stage_profile"  # the extra_info key of a benchmark's stage record
STAGE_TEXT = "stage_profile.txt"
STAGE_PLOT = "stage_breakdown.png"
_COLOURS = {"model_inference": "#1f77b4", "preprocessing": "#ff7f0e", "postprocessing": "#2ca02c"}


@dataclass(frozen=True)
class StageBreakdown:
    """One benchmark's stage calls.

    Args:
        benchmark: the benchmark's fullname.
        frames: frames the profiled calls served (for per-frame times).
        profiler: a profiler holding every call.
    """

    benchmark: str
    frames: int
    profiler: StageProfiler


def stage_record(profiler: StageProfiler, frames: int) -> dict[str, object]:
    """What a benchmark stores under ``extra_info[STAGE_KEY]``: every call, and the frames.

    Args:
        profiler: the profiler that timed exactly the benchmark's recorded rounds.
        frames: how many frames those rounds processed.
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames {frames!r}: expected a positive integer")
    return {"frames": frames, "seconds": profiler.raw()}


def stage_breakdowns(run: BenchmarkRun) -> list[StageBreakdown]:
    """Every benchmark of ``run`` that recorded stages, by name.

    Raises:
        ValueError: a stage record is malformed (the message names the benchmark).
    """
    found = []
    for name, samples in sorted(run.benchmarks.items()):
        record = samples.extra_info.get(STAGE_KEY)
        if record is None:
            continue
        try:
            found.append(_breakdown(name, record))
        except ValueError as exc:
            raise ValueError(f"benchmark {name}: extra_info.{STAGE_KEY}: {exc}") from None
    return found


def write_stage_outputs(directory: Path, run: BenchmarkRun) -> list[Path]:
    """Write stage_profile.txt and stage_breakdown.png when the run recorded stages.

    Returns the files written (none when no benchmark recorded stages).
    """
    breakdowns = stage_breakdowns(run)
    if not breakdowns:
        return []
    text = "\n".join(_section(b) for b in breakdowns)
    atomic_write_bytes(directory / STAGE_TEXT, text.encode())
    _plot(directory / STAGE_PLOT, breakdowns, run.profile)
    return [directory / STAGE_TEXT, directory / STAGE_PLOT]


def _breakdown(name: str, record: object) -> StageBreakdown:
    if not isinstance(record, Mapping):
        raise ValueError("expected an object with 'frames' and 'seconds'")
    frames = record.get("frames")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames {frames!r}: expected a positive integer")
    seconds = record.get("seconds")
    if not isinstance(seconds, Mapping) or not seconds:
        raise ValueError("'seconds' must map each stage to its category and call durations")
    return StageBreakdown(name, frames, StageProfiler.from_raw(seconds))


def _section(breakdown: StageBreakdown) -> str:
    total_s = sum(row.total_s for row in breakdown.profiler.stats())
    header = (
        f"# {short_name(breakdown.benchmark)}: {breakdown.frames} frames, "
        f"{1e3 * total_s / breakdown.frames:.1f} ms of profiled stages per frame\n"
    )
    return header + breakdown.profiler.text()


def _plot(path: Path, breakdowns: list[StageBreakdown], profile: str) -> None:
    """One panel per benchmark: milliseconds per frame of each stage, coloured by category."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    heights = [max(2.5, 0.42 * len(b.profiler.stats()) + 1.4) for b in breakdowns]
    fig, axes = plt.subplots(
        len(breakdowns), 1, figsize=(10, sum(heights)), height_ratios=heights, squeeze=False
    )
    for ax, breakdown in zip(axes[:, 0], breakdowns, strict=True):
        rows = breakdown.profiler.stats()
        per_frame = [1e3 * row.total_s / breakdown.frames for row in rows]
        positions = list(range(len(rows)))[::-1]  # the profiler's order, top to bottom
        ax.barh(positions, per_frame, color=[_COLOURS[row.category] for row in rows])
        ax.set_yticks(positions, [row.name for row in rows], fontsize=9)
        widest = max(per_frame)
        for y, value, row in zip(positions, per_frame, rows, strict=True):
            label = f"{value:.1f} ms  ({row.percent:.1f} %, {row.count} calls)"
            ax.text(value + 0.01 * widest, y, label, va="center", fontsize=8)
        ax.set_xlim(0, widest * 1.45)  # room for the labels right of the longest bar
        ax.set_xlabel("milliseconds per frame")
        total = sum(per_frame)
        ax.set_title(
            f"{short_name(breakdown.benchmark)} on {profile}: {total:.0f} ms of stages per "
            f"frame, {breakdown.frames} frames",
            fontsize=10,
        )
        shares = {c: sum(r.percent for r in rows if r.category == c) for c in CATEGORIES}
        handles = [
            Patch(color=_COLOURS[c], label=f"{c} ({shares[c]:.1f} %)")
            for c in CATEGORIES
            if any(r.category == c for r in rows)
        ]
        ax.legend(handles=handles, loc="lower right", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
