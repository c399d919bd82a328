"""The graph a session actually ran: ONNX Runtime's optimised copy of the artifact.

ORT rewrites a graph when it loads it (constant folding, Conv+Relu into FusedConv under the
Conv's name, blocked-layout NCHWc convolutions with Reorder nodes around them), so the nodes
in a profile are those of the rewritten graph, not of the file. The session saves that graph
(``SessionOptions.optimized_model_filepath``); from it the profile takes each node's operator
domain, which the trace leaves out: an NCHWc Conv and an ONNX Conv are different kernels and
must not be matched as one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import onnx

from faceperf.bench.explain.trace import TraceError


@dataclass(frozen=True)
class RanGraph:
    """Node names and operator domains of the optimised graph.

    Args:
        domains: node name → domain, for the named nodes.
        op_domains: op type → the domains of its unnamed nodes (the trace calls those
            ``<op type>_<index>``, a name the saved graph does not hold).
    """

    domains: dict[str, str]
    op_domains: dict[str, frozenset[str]]

    def domain_of(self, name: str, op_type: str) -> str:
        """The operator domain of the node the trace calls ``name``.

        Raises:
            TraceError: the graph has no such node, or its domain is ambiguous.
        """
        if name in self.domains:
            return self.domains[name]
        candidates = self.op_domains.get(op_type, frozenset())
        if len(candidates) != 1:
            raise TraceError(
                f"the profiler timed node {name!r} ({op_type}), which the optimised graph "
                f"{'lacks' if not candidates else 'holds in several domains'}"
            )
        return next(iter(candidates))


def read_ran_graph(path: Path) -> RanGraph:
    """The optimised graph ORT saved at ``path``.

    Raises:
        TraceError: the file is missing or not an ONNX model.
    """
    try:
        model = onnx.load(str(path))
    except Exception as err:  # onnx raises OSError, protobuf's DecodeError, its own errors
        raise TraceError(f"{path}: the optimised graph is unreadable ({err})") from None
    domains: dict[str, str] = {}
    op_domains: dict[str, set[str]] = defaultdict(set)
    for node in model.graph.node:
        if node.name:
            domains[node.name] = node.domain
        else:
            op_domains[node.op_type].add(node.domain)
    return RanGraph(domains, {op: frozenset(found) for op, found in op_domains.items()})
