"""Which node of the candidate's run is which node of the reference's.

Three passes, each over what the previous left:

1. the same name (one the exporter gave), operator and shapes: the node is plainly the same;
2. the same operator and shapes, in execution order (``difflib.SequenceMatcher`` over the
   signatures, so a renamed layer pairs with the one in its place, and a block repeated four
   times pairs block with block);
3. the same name and operator, shapes changed (a reconversion at another input size), for
   names the exporter gave.

Names ORT made up are left to the second pass: it names the nodes it creates from a counter
(``ReorderOutput_token_19``), in an order that differs from one session of the same file to the
next, and the trace names an unnamed node by its index (``Conv_177``), which shifts when a layer
is inserted; one such name denotes different nodes in two graphs.

What is left is reference-only ("gone") or candidate-only ("new").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from faceperf.bench.explain.record import NodeTiming, OpProfile

_TOKEN = re.compile(r"_token_\d+$")


class MatchedBy(StrEnum):
    NAME = "name"
    SHAPES = "shapes"
    NAME_SHAPES_CHANGED = "name, shapes changed"


@dataclass(frozen=True)
class Pair:
    """A node of the reference and the candidate's node that does its work."""

    reference: NodeTiming
    candidate: NodeTiming
    matched_by: MatchedBy


@dataclass(frozen=True)
class Matching:
    """Every node of both runs, paired or on one side only.

    Args:
        pairs: in the candidate's execution order.
        gone: reference-only nodes, in the reference's execution order.
        new: candidate-only nodes, in the candidate's execution order.
    """

    pairs: tuple[Pair, ...]
    gone: tuple[NodeTiming, ...]
    new: tuple[NodeTiming, ...]

    def counterpart(self) -> dict[str, str]:
        """Candidate node name → its reference node's name, for the paired nodes."""
        return {p.candidate.name: p.reference.name for p in self.pairs}


def match_nodes(reference: OpProfile, candidate: OpProfile) -> Matching:
    """Pair the nodes of ``reference`` and ``candidate`` (see the module's docstring)."""
    pairs: list[Pair] = []
    left_ref, left_cand = list(reference.nodes), list(candidate.nodes)
    passes: tuple[tuple[MatchedBy, Pairing], ...] = (
        (MatchedBy.NAME, _by_key(_given(lambda n: (n.name, n.signature)))),
        (MatchedBy.SHAPES, _in_order(lambda n: n.signature)),
        (MatchedBy.NAME_SHAPES_CHANGED, _by_key(_given(lambda n: (n.name, n.domain, n.op_type)))),
    )
    for how, pairing in passes:
        found = pairing(left_ref, left_cand)
        pairs += [Pair(r, c, how) for r, c in found]
        paired = {id(node) for pair in found for node in pair}
        left_ref = [n for n in left_ref if id(n) not in paired]
        left_cand = [n for n in left_cand if id(n) not in paired]
    pairs.sort(key=lambda p: p.candidate.position)
    return Matching(tuple(pairs), tuple(left_ref), tuple(left_cand))


Nodes = Sequence[NodeTiming]
Pairing = Callable[[Nodes, Nodes], list[tuple[NodeTiming, NodeTiming]]]
Key = Callable[[NodeTiming], Hashable]


def generated_name(name: str, op_type: str) -> bool:
    """``name`` is one ORT made up: ``ReorderOutput``, ``ReorderOutput_token_19``, ``Conv_177``."""
    return name == op_type or bool(
        _TOKEN.search(name) or re.fullmatch(rf"{re.escape(op_type)}_\d+", name)
    )


def _given(key: Key) -> Key:
    """``key`` for a node with a name the exporter gave; for a generated name, a key unique to
    the node (its identity), so that it pairs with nothing."""

    def given(node: NodeTiming) -> Hashable:
        return ("generated", id(node)) if generated_name(node.name, node.op_type) else key(node)

    return given


def _by_key(key: Key) -> Pairing:
    """Pair nodes whose ``key`` (holding the name, unique in a graph) is equal, wherever they
    ran: ORT may order independent branches differently in two sessions."""

    def pair(reference: Nodes, candidate: Nodes) -> list[tuple[NodeTiming, NodeTiming]]:
        by_key = {key(n): n for n in reference}
        return [(by_key[key(c)], c) for c in candidate if key(c) in by_key]

    return pair


def _in_order(key: Key) -> Pairing:
    """Pair nodes of equal ``key`` along the longest common runs of the two execution orders:
    of two identical blocks, the first pairs with the first."""

    def pair(reference: Nodes, candidate: Nodes) -> list[tuple[NodeTiming, NodeTiming]]:
        a, b = [key(n) for n in reference], [key(n) for n in candidate]
        # autojunk off: it would ignore any signature that makes up over 1 % of a long graph,
        # which in a CNN is every common convolution.
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        return [
            (reference[block.a + offset], candidate[block.b + offset])
            for block in matcher.get_matching_blocks()
            for offset in range(block.size)
        ]

    return pair
