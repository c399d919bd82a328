"""Where a candidate's extra time went: per operation, what it added, ranked.

Every paired node is a line of its own (reference median → candidate median). Nodes on one side
only are grouped: the new nodes of one operator between the same two paired nodes read as one
line ("3 new Conv [1x64x80x80] after /conv1/Conv"), as do the gone ones; a layer inserted
three times is one cause, not three. Lines are ranked by the time they add; each gets its share
of the whole slowdown (candidate total − reference total, both sums of node medians).

Noise. A line's change counts ("stands out") only when it exceeds both

- its noise: the sum, over its nodes, of the wider of the two sides' interquartile ranges of
  that node's per-call times (a new or gone node has one side), each at least the profiler's
  1 µs resolution. A difference between two medians smaller than the spread of single calls is
  what two runs of one artifact show as well;
- a floor of 0.5 % of the reference's total: a sixth of the smallest slowdown the merge gate
  is set to catch (3 %). Below it a line explains no gated slowdown, and in A/A runs of STAR a
  few of ~430 tiny steady nodes (a 3 µs Conv whose spread is 1 µs) always beat their spread
  by a microsecond: without the floor the headline named one of them in 4 of 10 runs.

When no line stands out, the headline says so rather than name the largest wobble.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from faceperf.bench.explain.match import MatchedBy, Matching, Pair, match_nodes
from faceperf.bench.explain.record import SCHEMA_VERSION, NodeTiming, OpProfile

RESOLUTION_MS = 0.001  # the trace's durations are whole microseconds
FLOOR_FRACTION = 0.005  # of the reference's total (see the module's docstring)
NOISE_RULE = (
    "a change counts when it exceeds the wider interquartile range of its nodes' per-call "
    "times on the two sides (at least 1 µs per node) and 0.5 % of the reference's total"
)


class Change(StrEnum):
    CHANGED = "changed"  # a paired node, its time changed (or not)
    NEW = "new"  # candidate only
    GONE = "gone"  # reference only


@dataclass(frozen=True)
class Line:
    """One row of the explanation: a paired node, or a group of new or gone nodes.

    Args:
        change: what the line is.
        op_type: the operator (the candidate's, for a pair).
        nodes: the node names (the candidate's; the reference's for gone nodes).
        shapes: the distinct first-output shapes of those nodes, in order.
        after: for new and gone nodes, the paired node that ran just before them on their side
            (None: at the start of the graph).
        reference_ms, candidate_ms: the summed medians per call on each side.
        noise_ms: the line's noise (see the module's docstring).
        floor_ms: the smallest change that counts whatever the noise (0.5 % of the total).
        share: ``delta_ms`` as a fraction of the whole slowdown; None when the candidate is not
            slower in total (a share of nothing).
        was: for a pair whose names differ, the reference's name.
    """

    change: Change
    op_type: str
    nodes: tuple[str, ...]
    shapes: tuple[str, ...]
    after: str | None
    reference_ms: float
    candidate_ms: float
    noise_ms: float
    floor_ms: float = 0.0
    share: float | None = None
    was: str | None = None

    @property
    def delta_ms(self) -> float:
        return self.candidate_ms - self.reference_ms

    @property
    def threshold_ms(self) -> float:
        """The change it must exceed to count: its noise, or the floor if higher."""
        return max(self.noise_ms, self.floor_ms)

    @property
    def stands_out(self) -> bool:
        """Its change exceeds its noise and the floor."""
        return abs(self.delta_ms) > self.threshold_ms

    def describe(self) -> str:
        """``3 new Conv [1x64x80x80] after /conv1/Conv``, ``Conv /conv2/Conv [1x64x21x21]``."""
        shapes = f"[{', '.join(self.shapes)}]"
        if self.change is Change.CHANGED:
            was = f" (was {self.was})" if self.was else ""
            return f"{self.op_type} {self.nodes[0]}{was} {shapes}"
        where = f"after {self.after}" if self.after else "at the start"
        return f"{len(self.nodes)} {self.change} {self.op_type} {shapes} {where}"

    def to_json(self) -> dict[str, object]:
        return {
            "change": str(self.change),
            "op_type": self.op_type,
            "nodes": list(self.nodes),
            "shapes": list(self.shapes),
            "after": self.after,
            "reference_ms": self.reference_ms,
            "candidate_ms": self.candidate_ms,
            "delta_ms": self.delta_ms,
            "noise_ms": self.noise_ms,
            "floor_ms": self.floor_ms,
            "stands_out": self.stands_out,
            "share": self.share,
            "was": self.was,
            "text": self.describe(),
        }


@dataclass(frozen=True)
class Explanation:
    """Both profiles, how their nodes paired, and the ranked lines.

    Args:
        reference, candidate: the profiles.
        matching: the pairing of their nodes.
        ranked: every line, most added time first.
        top: how many lines a table shows.
    """

    reference: OpProfile
    candidate: OpProfile
    matching: Matching
    ranked: tuple[Line, ...]
    top: int = 5

    @property
    def label(self) -> str:
        return self.candidate.label

    @property
    def slowdown_ms(self) -> float:
        """Candidate total − reference total, per call (sums of node medians)."""
        return self.candidate.total_ms - self.reference.total_ms

    @property
    def ratio(self) -> float:
        return self.candidate.total_ms / self.reference.total_ms

    def culprits(self) -> tuple[Line, ...]:
        """The lines that add time beyond their noise and the floor, most first."""
        return tuple(line for line in self.ranked if line.stands_out and line.delta_ms > 0)

    def headline(self) -> str:
        """``star/optimized x1.09 (profiled): 3 new Conv [..] after X: +31.0 ms of +35.2 ms``."""
        start = f"{self.label} x{self.ratio:.2f} (profiled)"
        culprits = self.culprits()
        if not culprits:
            return (
                f"{start}: no operation stands out ({ms(self.slowdown_ms)} ms in total; no "
                "change beyond both its per-call spread and 0.5 % of the total)"
            )
        first = culprits[0]
        return f"{start}: {first.describe()}: {ms(first.delta_ms)} ms of {ms(self.slowdown_ms)} ms"

    def lines(self) -> list[str]:
        """The headline and a markdown table of the ``top`` lines, with notes."""
        from faceperf.bench.explain.render import explanation_lines

        return explanation_lines(self)

    def to_json(self) -> dict[str, object]:
        counts = {str(how): 0 for how in MatchedBy}
        for pair in self.matching.pairs:
            counts[str(pair.matched_by)] += 1
        return {
            "schema_version": SCHEMA_VERSION,
            "label": self.label,
            "headline": self.headline(),
            "reference": self.reference.to_json(),
            "candidate": self.candidate.to_json(),
            "slowdown_ms": self.slowdown_ms,
            "ratio": self.ratio,
            "noise_rule": NOISE_RULE,
            "matched": counts,
            "new": len(self.matching.new),
            "gone": len(self.matching.gone),
            "lines": [line.to_json() for line in self.ranked],
        }


def explain(reference: OpProfile, candidate: OpProfile, top: int = 5) -> Explanation:
    """Rank what each operation of ``candidate`` adds over ``reference``.

    Args:
        reference, candidate: profiles of the two artifacts, best taken together
            (profile.profile_interleaved).
        top: how many lines ``Explanation.lines()`` shows.
    """
    if top < 1:
        raise ValueError(f"top {top}: expected at least 1")
    matching = match_nodes(reference, candidate)
    lines = [
        *(_pair_line(pair) for pair in matching.pairs),
        *_grouped(Change.NEW, candidate.nodes, matching.new, _paired(matching, "candidate")),
        *_grouped(Change.GONE, reference.nodes, matching.gone, _paired(matching, "reference")),
    ]
    slowdown = candidate.total_ms - reference.total_ms
    floor = FLOOR_FRACTION * reference.total_ms
    shared = [_with_share(line, slowdown, floor) for line in lines]
    # sorted() is stable: equal lines keep execution order.
    ranked = tuple(sorted(shared, key=lambda line: -line.delta_ms))
    return Explanation(reference, candidate, matching, ranked, top)


def ms(value: float) -> str:
    """A signed duration with the digits its size deserves: ``+31.0``, ``+1.25``, ``-0.042``."""
    digits = 1 if abs(value) >= 10 else 2 if abs(value) >= 1 else 3
    return f"{value:+.{digits}f}"


def _noise(node: NodeTiming) -> float:
    return max(node.spread_ms, RESOLUTION_MS)


def _pair_line(pair: Pair) -> Line:
    ref, cand = pair.reference, pair.candidate
    shapes = (cand.shape_text(),)
    if pair.matched_by is MatchedBy.NAME_SHAPES_CHANGED:
        shapes = (f"{ref.shape_text()} → {cand.shape_text()}",)
    return Line(
        change=Change.CHANGED,
        op_type=cand.op_type,
        nodes=(cand.name,),
        shapes=shapes,
        after=None,
        reference_ms=ref.median_ms,
        candidate_ms=cand.median_ms,
        noise_ms=max(_noise(ref), _noise(cand)),
        was=ref.name if ref.name != cand.name else None,
    )


def _paired(matching: Matching, side: str) -> set[str]:
    return {getattr(pair, side).name for pair in matching.pairs}


def _grouped(
    change: Change, order: Sequence[NodeTiming], alone: Iterable[NodeTiming], paired: set[str]
) -> list[Line]:
    """One line per (paired node before them, operator) of the one-side-only nodes ``alone``,
    walking ``order`` (that side's execution order)."""
    alone_names = {node.name for node in alone}
    groups: dict[tuple[str | None, str], list[NodeTiming]] = {}
    before: str | None = None
    for node in order:
        if node.name in paired:
            before = node.name
        elif node.name in alone_names:
            groups.setdefault((before, node.op_type), []).append(node)
    return [_group_line(change, after, nodes) for (after, _), nodes in groups.items()]


def _group_line(change: Change, after: str | None, nodes: list[NodeTiming]) -> Line:
    total = sum(node.median_ms for node in nodes)
    return Line(
        change=change,
        op_type=nodes[0].op_type,
        nodes=tuple(node.name for node in nodes),
        shapes=tuple(dict.fromkeys(node.shape_text() for node in nodes)),
        after=after,
        reference_ms=total if change is Change.GONE else 0.0,
        candidate_ms=total if change is Change.NEW else 0.0,
        noise_ms=sum(_noise(node) for node in nodes),
    )


def _with_share(line: Line, slowdown_ms: float, floor_ms: float) -> Line:
    share = line.delta_ms / slowdown_ms if slowdown_ms > 0 else None
    return dataclasses.replace(line, share=share, floor_ms=floor_ms)
