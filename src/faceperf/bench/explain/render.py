"""The explanation for people: the headline, a markdown table of the top lines, the notes.
Formatting only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from faceperf.bench.explain.diff import NOISE_RULE, Line, ms

if TYPE_CHECKING:
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
