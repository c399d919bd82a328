"""The baseline gate for people: its section of a summary (bench/report/render.py lays it out)
and the table ``faceperf compare --markdown`` prints, the terminal lines of ``faceperf compare``,
and what a new baseline changed. Formatting only."""

from __future__ import annotations

from faceperf.bench.gate.compare import (
    SUGGEST_MORE_ROUNDS,
    SUGGEST_QUIET_MACHINE,
    GateReport,
    GateRow,
    SampleWarning,
)
from faceperf.bench.gate.storage import BenchmarkRun, short_name
from faceperf.bench.gate.update import StoredBaseline
from faceperf.bench.report.render import summary_markdown
from faceperf.bench.report.summary import Row, Section, Summary
from faceperf.verdicts import Verdict

BASELINE_KEY = "baseline"
_COLUMNS = ("benchmark", "baseline (ms)", "current (ms)", "change", "p-value", "verdict", "note")
_ALIGN = ("---", "---:", "---:", "---:", "---:", "---", "---")
# The report says each piece of a warning's advice once, as a note, and keeps in the row only
# what is particular to it (the counts, the spread).
_NOTES = {
    SUGGEST_QUIET_MACHINE: f"Noisy samples: {SUGGEST_QUIET_MACHINE}.",
    SUGGEST_MORE_ROUNDS: f"Too few samples, or noisy ones: {SUGGEST_MORE_ROUNDS}.",
}


def gate_markdown(report: GateReport) -> str:
    """The summary of a comparison on its own (``faceperf compare --markdown``)."""
    title = f"faceperf gate on {report.profile}"
    return summary_markdown(Summary(title, (gate_section(report),)))


def gate_section(report: GateReport) -> Section:
    """The baseline gate's part of a summary: one row per benchmark of either run, the advice
    about untrustworthy samples said once, the rules it judged by and its warnings as notes."""
    policy = report.policy
    rule = (
        f"`slower`: median slower by more than the threshold (default "
        f"{policy.default_threshold:.0%}) and one-sided Mann-Whitney U p < {policy.alpha:g} on "
        f"the raw samples; fewer than {policy.min_samples} samples on a side is never `slower`."
    )
    warnings = [f"⚠ {_escape(text)}" for text in (*report.mismatches, *report.notices)]
    return Section(
        key=BASELINE_KEY,
        name="baseline gate",
        heading=f"**Baseline gate**: against the committed baseline of {report.baseline_profile}",
        columns=_COLUMNS,
        align=_ALIGN,
        rows=tuple(_row(row, policy.default_threshold) for row in report.rows),
        notes=(*warnings, rule),
        problems=report.problems,
    )


def no_baseline_section(run: BenchmarkRun, reason: str, hint: str) -> Section:
    """The baseline gate's part of a summary when there is no baseline: the run's medians,
    judged by nothing.

    Args:
        run: the run.
        reason: why nothing was compared (``no baseline for <profile> (<path>)``).
        hint: how to record a baseline.
    """
    rows = tuple(
        Row(
            short_name(name),
            None,
            (f"`{_escape(name)}`", f"{1e3 * samples.median_s:.3f}", str(len(samples.samples_s))),
        )
        for name, samples in sorted(run.benchmarks.items())
    )
    return Section(
        key=BASELINE_KEY,
        name="baseline gate",
        heading=f"**Measured** on {run.profile}, no baseline to compare with",
        columns=("benchmark", "median (ms)", "rounds"),
        align=("---", "---:", "---:"),
        rows=rows,
        notes=(_escape(hint),),
        not_run=reason,
    )


def not_run_section(reason: str) -> Section:
    """The baseline gate's part of a summary when it could not compare (a refused comparison,
    an unreadable baseline)."""
    return Section(key=BASELINE_KEY, name="baseline gate", not_run=_escape(reason))


def gate_text(report: GateReport) -> str:
    """Plain text for the CLI: the summary line, then one line per benchmark and its warnings."""
    lines = [report.summary()]
    for row in report.rows:
        change = f"{100 * row.change:+.1f} %" if row.change is not None else "-"
        lines.append(f"  {row.verdict.value:<11} {change:>9}  {row.name.split('::')[-1]}")
        lines += [f"      {warning}" for warning in row.warnings]
    return "\n".join(lines)


def membership_text(stored: StoredBaseline) -> str | None:
    """Benchmarks added and removed since the previous baseline; None without one."""
    if stored.previous is None:
        return None
    lines = [f"  added: {name}" for name in stored.added]
    lines += [f"  removed: {name}" for name in stored.removed]
    if not lines:
        return "same benchmarks as the previous baseline"
    header = (
        f"{len(stored.added)} added, {len(stored.removed)} removed since the previous baseline:"
    )
    return "\n".join([header, *lines])


def _row(row: GateRow, default_threshold: float) -> Row:
    facts = [row.note] if row.note else []
    advice = []
    for warning in row.warnings:
        if isinstance(warning, SampleWarning):
            facts.append(warning.fact)
            advice += [_NOTES.get(a, a) for a in warning.advice]
        else:
            facts.append(warning)
    if row.threshold != default_threshold and row.change is not None:
        facts.append(f"threshold {row.threshold:.0%}")
    verdict = row.verdict.value
    if row.verdict in (Verdict.SLOWER, Verdict.ACCEPTED, Verdict.FASTER):
        verdict = f"**{verdict}**"
    if row.unstable:
        verdict += " ⚠ unstable"
    cells = (
        f"`{row.name}`",
        _ms(row.baseline_median_s),
        _ms(row.current_median_s),
        "—" if row.change is None else f"{row.change:+.1%}",
        "—" if row.p_value is None else _p(row.p_value),
        verdict,
        "; ".join(facts),
    )
    return Row(short_name(row.name), row.verdict, tuple(_escape(c) for c in cells), tuple(advice))


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    ms = seconds * 1e3
    # About three significant digits whatever the scale: 111, 10.4, 5.13, 0.123.
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3g}"


def _p(p_value: float) -> str:
    return "<0.0001" if p_value < 1e-4 else f"{p_value:.2g}"


def _escape(text: str) -> str:
    # A pipe ends a table cell and a newline ends the row; neither may come from a name or note.
    return text.replace("|", "\\|").replace("\n", " ")
