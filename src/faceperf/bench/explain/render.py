"""The explanation for people: the headline, a markdown table of the top lines, the notes.
Formatting only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from faceperf.bench.explain.diff import NOISE_RULE, Change, Line, ms

if TYPE_CHECKING:
    from faceperf.bench.explain.coreml import PlanExplanation, PlanLine
    from faceperf.bench.explain.diff import Explanation

_HEADER = (
    "| # | operation | reference ms | candidate ms | added ms | share | beyond noise |",
    "|---:|---|---:|---:|---:|---:|---|",
)


def explanation_lines(explanation: Explanation) -> list[str]:
    """The headline, the table of the ``top`` lines (and what the rest add), the notes."""
    shown = explanation.ranked[: explanation.top]
    rest = explanation.ranked[explanation.top :]
    out = [explanation.headline(), "", *_HEADER]
    out += [_row(rank, line) for rank, line in enumerate(shown, start=1)]
    if rest:
        added = sum(line.delta_ms for line in rest)
        out.append(f"| | {len(rest)} more line(s) | | | {ms(added)} | | |")
    out += ["", *_notes(explanation)]
    return out


def _row(rank: int, line: Line) -> str:
    share = "" if line.share is None else f"{100 * line.share:.0f} %"
    beyond = "yes" if line.stands_out else f"no (±{line.threshold_ms:.3f})"
    cells = (
        str(rank),
        line.describe().replace("|", "\\|"),
        f"{line.reference_ms:.3f}",
        f"{line.candidate_ms:.3f}",
        ms(line.delta_ms),
        share,
        beyond,
    )
    return "| " + " | ".join(cells) + " |"


def _notes(explanation: Explanation) -> list[str]:
    ref, cand, matching = explanation.reference, explanation.candidate, explanation.matching
    return [
        f"- totals per call (sums of node medians, profiler on): reference {ref.total_ms:.3f} ms, "
        f"candidate {cand.total_ms:.3f} ms ({ms(explanation.slowdown_ms)} ms); per-call "
        f"interquartile range {ref.total_spread_ms:.3f} / {cand.total_spread_ms:.3f} ms.",
        f"- nodes: {len(matching.pairs)} paired, {len(matching.new)} new, "
        f"{len(matching.gone)} gone; {ref.calls} / {cand.calls} profiled calls, "
        f"{cand.threads} intra-op thread(s).",
        f"- noise: {NOISE_RULE}.",
    ]


def plan_explanation_lines(explanation: PlanExplanation) -> list[str]:
    """A Core ML explanation (bench/explain/coreml.py) as the ONNX one reads: the headline,
    the table of the ``top`` lines (and what the rest add), the notes."""
    from faceperf.bench.explain.coreml import ESTIMATES

    unit = "est. ms" if explanation.measured_ms is not None else "% of work (est.)"
    added = "added est. ms" if explanation.measured_ms is not None else "added points (est.)"
    out = [
        explanation.headline(),
        "",
        f"| # | operation | device | reference {unit} | candidate {unit} | {added} | share |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    shown = explanation.ranked[: explanation.top]
    rest = explanation.ranked[explanation.top :]
    out += [_plan_row(rank, line) for rank, line in enumerate(shown, start=1)]
    if rest:
        total = _plan_delta(explanation.measured_ms is not None, sum(line.delta for line in rest))
        out.append(f"| | {len(rest)} more line(s) | | | | {total} | |")
    ref, cand = explanation.reference, explanation.candidate
    notes = [f"- {ESTIMATES}; Core ML may still run an op elsewhere when it runs the model."]
    if explanation.measured_ms is None:
        notes.append(
            "- no measured times: costs are in points of each plan's own estimated work, which "
            "do not compare in absolute terms (a new op lowers every other op's share)."
        )
    else:
        before, after = explanation.measured_ms
        notes.append(
            f"- estimated ms = an op's share x its side's measured time per call: reference "
            f"{before:.3f} ms, candidate {after:.3f} ms ({ms(after - before)} ms)."
        )
    paired = ", ".join(f"{count} by {how}" for how, count in explanation.paired.items())
    notes += [
        f"- ops: {sum(explanation.paired.values())} paired ({paired}), "
        f"{explanation.count(Change.NEW)} new, {explanation.count(Change.GONE)} gone, "
        f"{len(explanation.moved)} moved device; const ops left out (no device, no cost).",
        f"- plans: reference {ref.compute_units}, {ref.provenance or 'provenance unknown'}; "
        f"candidate {cand.compute_units}, {cand.provenance or 'provenance unknown'}.",
    ]
    if ref.compute_units != cand.compute_units:
        notes.append("- the plans are for different compute units: a device change may be that.")
    uncosted = sum(line.uncosted for line in explanation.ranked)
    if uncosted:
        notes.append(f"- {uncosted} op(s) without a cost estimate, counted as 0.")
    return [*out, "", *notes]


def _plan_row(rank: int, line: PlanLine) -> str:
    if line.moved:
        device = f"{_device(line.reference_device)} → {_device(line.candidate_device)}"
    else:
        device = _device(line.candidate_device or line.reference_device)
    if line.reference_ms is not None and line.candidate_ms is not None:
        before, after = f"{line.reference_ms:.3f}", f"{line.candidate_ms:.3f}"
    else:
        before, after = f"{100 * line.reference_cost:.1f}", f"{100 * line.candidate_cost:.1f}"
    delta = _plan_delta(line.estimated_ms, line.delta)
    share = "" if line.share is None else f"{100 * line.share:.0f} %"
    cells = (str(rank), line.describe().replace("|", "\\|"), device, before, after, delta, share)
    return "| " + " | ".join(cells) + " |"


def _plan_delta(in_ms: bool, delta: float) -> str:
    # Without measured times a delta is a fraction of the plans' work, shown in points.
    # Rounded first, so that float dust of an unchanged op reads +0.000, not -0.000.
    delta = round(delta, 9) + 0.0
    return ms(delta) if in_ms else f"{100 * delta:+.1f}"


def _device(device: object) -> str:
    return "-" if device is None else str(device)
