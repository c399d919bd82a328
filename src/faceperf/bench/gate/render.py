"""The baseline gate for people: the table a reviewer pastes in a pull request, the terminal
lines of ``faceperf compare``, and what a new baseline changed. Formatting only."""

from __future__ import annotations

from faceperf.bench.gate.compare import GateReport, GateRow, Verdict
from faceperf.bench.gate.update import StoredBaseline

_HEADER = "| benchmark | baseline (ms) | current (ms) | change | p-value | verdict | note |"
_RULE = "|---|---:|---:|---:|---:|---|---|"


def gate_markdown(report: GateReport) -> str:
    """The table a reviewer pastes in a pull request, with the rules it was decided by."""
    policy = report.policy
    lines = [f"**{_escape(report.summary())}**", ""]
    lines += [f"> ⚠ {_escape(text)}" for text in (*report.mismatches, *report.notices)]
    if report.mismatches or report.notices:
        lines.append("")
    lines += [_HEADER, _RULE]
    lines += [_markdown_row(row, policy.default_threshold) for row in report.rows]
    lines += [
        "",
        f"Regression: median slower by more than the threshold (default "
        f"{policy.default_threshold:.0%}) and one-sided Mann-Whitney U p < "
        f"{policy.alpha:g} on the raw samples; fewer than {policy.min_samples} "
        "samples on a side is never a regression.",
    ]
    return "\n".join(lines) + "\n"


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


def _markdown_row(row: GateRow, default_threshold: float) -> str:
    notes = [row.note] if row.note else []
    notes += list(row.warnings)
    if row.threshold != default_threshold and row.change is not None:
        notes.append(f"threshold {row.threshold:.0%}")
    verdict = row.verdict.value
    if row.verdict in (Verdict.REGRESSION, Verdict.ACCEPTED, Verdict.IMPROVEMENT):
        verdict = f"**{verdict}**"
    if row.unstable:
        verdict += " ⚠ unstable"
    cells = [
        f"`{row.name}`",
        _ms(row.baseline_median_s),
        _ms(row.current_median_s),
        "—" if row.change is None else f"{row.change:+.1%}",
        "—" if row.p_value is None else _p(row.p_value),
        verdict,
        "; ".join(notes),
    ]
    return "| " + " | ".join(_escape(cell) for cell in cells) + " |"


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
