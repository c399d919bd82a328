"""Where one artifact's call goes, for a budget it breaks: its operators, heaviest first.

A portable budget (bench/calibration.py) says an artifact uses the machine badly; this says
where. The nodes of one profiled call are grouped by operator (a pattern of many small nodes,
such as a convolution split into hundreds of pieces, reads as one line), each group with its
share of the call and its time in canary calls, the budget's own unit, beside the single
slowest node.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from faceperf.bench.explain.record import OpProfile


@dataclass(frozen=True)
class OperatorShare:
    """Every node of one operator: how many, their summed median time, their share."""

    op_type: str
    nodes: int
    total_ms: float
    share: float

    def describe(self, canary_ms: float | None) -> str:
        """``Conv x780: 41.2 ms (4.52 canary calls, 77 %)``."""
        units = "" if not canary_ms else f"{self.total_ms / canary_ms:.2f} canary calls, "
        return f"{self.op_type} x{self.nodes}: {self.total_ms:.2f} ms ({units}{self.share:.0%})"


def operator_shares(profile: OpProfile) -> tuple[OperatorShare, ...]:
    """The profile's operators, heaviest first (summed node medians; shares of their sum)."""
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for node in profile.nodes:
        totals[node.op_type] += node.median_ms
        counts[node.op_type] += 1
    whole = sum(totals.values()) or 1.0
    shares = [OperatorShare(op, counts[op], ms, ms / whole) for op, ms in totals.items()]
    return tuple(sorted(shares, key=lambda s: s.total_ms, reverse=True))


def slowest_summary(profile: OpProfile, canary_ms: float | None, top: int = 3) -> str:
    """One line: the ``top`` operators and the slowest node, in ms and canary calls."""
    if not profile.nodes:
        return f"{profile.label}: the profiler recorded no node"
    shares = "; ".join(s.describe(canary_ms) for s in operator_shares(profile)[:top])
    node = max(profile.nodes, key=lambda n: n.median_ms)
    return (
        f"{profile.label}, profiled ({profile.calls} calls): {shares}; slowest node "
        f"{node.op_type} {node.name} {node.shape_text()} {node.median_ms:.2f} ms"
    )
