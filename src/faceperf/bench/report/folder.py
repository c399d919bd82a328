"""The report folder every perf run writes: summary.md, results.json, plots and, when the
pipeline benchmark ran, its stage profile (stage_profile.txt, stage_breakdown.png).

summary.md holds every gate of the run in the one shape of bench/report/render.py: the merge
gate's section (handed in by the caller, who ran it), the baseline gate's, the speedups'."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faceperf.bench.budgets import load_budgets
from faceperf.bench.errors import BaselineError, ProfileMismatchError
from faceperf.bench.gate.compare import (
    ALLOW_MISMATCH_OPTION,
    GatePolicy,
    GateReport,
    compare_runs,
)
from faceperf.bench.gate.paths import budgets_path
from faceperf.bench.gate.render import gate_section, no_baseline_section
from faceperf.bench.gate.storage import BenchmarkRun, load_run
from faceperf.bench.report.render import summary_markdown
from faceperf.bench.report.stages import write_stage_outputs
from faceperf.bench.report.summary import Section, Summary
from faceperf.bench.speedups.estimate import speedup_records
from faceperf.bench.speedups.render import speedup_section
from faceperf.fileio import atomic_write_bytes


@dataclass(frozen=True)
class ReportInputs:
    """What a report is made from.

    Args:
        results: the run's pytest-benchmark JSON (results.json in the report folder).
        baseline: the committed baseline to compare with, if there is one.
        policy: the gate's thresholds.
        skip_refused: a baseline the gate refuses (another profile, runtime or CPU) is reported
            as not compared, with the reason, instead of raised (`make perf` on a CPU the
            committed baseline was not recorded on).
    """

    results: Path
    baseline: Path | None
    policy: GatePolicy
    skip_refused: bool = False


def policy_from_budgets(
    allow_mismatch: bool = False,
    accepted: dict[str, str] | None = None,
    mismatch_flag: str = ALLOW_MISMATCH_OPTION,
) -> GatePolicy:
    """The gate's policy with the thresholds of the reviewed budgets file; ``mismatch_flag``
    is the option the caller's user has for ``allow_mismatch``."""
    budgets = load_budgets(budgets_path())
    return GatePolicy(
        default_threshold=budgets.default_threshold,
        thresholds=budgets.thresholds,
        not_gated=budgets.not_gated,
        allow_mismatch=allow_mismatch,
        accepted=accepted or {},
        mismatch_flag=mismatch_flag,
    )


def gate(inputs: ReportInputs) -> tuple[GateReport | None, BenchmarkRun, str | None]:
    """Compare the run with its baseline: the comparison (None when nothing was compared), the
    run, and why nothing was compared when a baseline was refused under ``skip_refused``.

    Raises:
        ProfileMismatchError: the baseline is refused and ``skip_refused`` is false.
    """
    current = load_run(inputs.results)
    if inputs.baseline is None or not inputs.baseline.exists():
        return None, current, None
    try:
        return compare_runs(load_run(inputs.baseline), current, inputs.policy), current, None
    except ProfileMismatchError as err:
        if not inputs.skip_refused:
            raise
        return None, current, str(err)


@dataclass(frozen=True)
class WrittenReport:
    """What :func:`write_report` wrote.

    Args:
        gate: the baseline gate's comparison (None without a baseline).
        summary: every section of summary.md; its exit status is the run's.
        refused: why the baseline was refused, when ``skip_refused`` skipped it.
    """

    gate: GateReport | None
    summary: Summary
    refused: str | None = None


def perf_title(profile: str) -> str:
    """How a perf run's summary starts."""
    return f"faceperf perf on {profile}"


def write_report(
    directory: Path, inputs: ReportInputs, baseline_hint: str, lead: Sequence[Section] = ()
) -> WrittenReport:
    """Write summary.md, the plots and the stage profile into ``directory``. Everything is
    rebuilt from the results file (and the baseline) alone, except ``lead``: the sections that
    open summary.md (the merge gate's).

    Raises:
        BaselineError: the results or the baseline cannot be read, or a speedup or stage
            record in the results is malformed.
    """
    report, current, refused = gate(inputs)
    if report is None:
        where = "" if inputs.baseline is None else f" ({inputs.baseline})"
        why = refused or f"no baseline for {current.profile}{where}"
        baseline = no_baseline_section(current, why, baseline_hint)
    else:
        baseline = gate_section(report)
    try:
        speedups = speedup_section(speedup_records(current))
        sections = (*lead, baseline, *([speedups] if speedups else []))
        summary = Summary(perf_title(current.profile), sections)
        write_summary(directory, summary)
        write_stage_outputs(directory, current)
    except ValueError as exc:
        raise BaselineError(f"{inputs.results}: {exc}") from None
    _plot_distributions(
        directory / "latency.png",
        current,
        load_run(inputs.baseline) if report is not None else None,
    )
    return WrittenReport(report, summary, refused)


def write_summary(directory: Path, summary: Summary) -> None:
    """``directory``/summary.md, atomically."""
    atomic_write_bytes(directory / "summary.md", summary_markdown(summary).encode())


def _plot_distributions(path: Path, current: BenchmarkRun, baseline: BenchmarkRun | None) -> None:
    """One box per benchmark: current samples, with the baseline's beside them when present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(current.benchmarks)
    if not names:
        return
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.35 * len(names) + 1)))
    positions, data, colours, labels = [], [], [], []
    for i, name in enumerate(names):
        labels.append(name.split("::")[-1].removeprefix("test_"))
        if baseline is not None and name in baseline.benchmarks:
            data.append([1e3 * s for s in baseline.benchmarks[name].samples_s])
            positions.append(3 * i)
            colours.append("#999999")
        data.append([1e3 * s for s in current.benchmarks[name].samples_s])
        positions.append(3 * i + 1)
        colours.append("#1f77b4")
    boxes = ax.boxplot(
        data,
        positions=positions,
        orientation="horizontal",
        widths=0.8,
        patch_artist=True,
        showfliers=True,
    )
    for patch, colour in zip(boxes["boxes"], colours, strict=True):
        patch.set_facecolor(colour)
    ax.set_yticks([3 * i + 0.5 for i in range(len(names))], labels, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds per call (log scale); grey = baseline, blue = this run")
    ax.set_title(f"latency distributions on {current.profile}")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
