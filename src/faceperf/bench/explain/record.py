"""What a profile is: per operation that ran, its shapes and its time in every call.

Immutable records; times are kept as ONNX Runtime wrote them (whole microseconds per call) and
summarised on demand, so a report can always say what its medians were computed from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCHEMA_VERSION = 1
US_PER_MS = 1000.0


@dataclass(frozen=True)
class TensorShape:
    """One input or output of a node as the profiler saw it: element type and dimensions."""

    dtype: str
    dims: tuple[int, ...]

    def text(self) -> str:
        """``1x64x80x80`` (``scalar`` for no dimensions)."""
        return "x".join(map(str, self.dims)) if self.dims else "scalar"

    def to_json(self) -> dict[str, object]:
        return {"dtype": self.dtype, "dims": list(self.dims)}


Signature = tuple[str, str, tuple[TensorShape, ...], tuple[TensorShape, ...]]


@dataclass(frozen=True)
class NodeTiming:
    """One node of the graph that ran, with its kernel time in each profiled call.

    Args:
        name: the node's name in the session's optimised graph (ORT keeps the original name of
            a node it fuses into, e.g. a Conv that became FusedConv).
        op_type: the kernel's operator, as the profiler names it (``Conv``, ``FusedConv``).
        domain: the operator's domain in the optimised graph ('' for ONNX, ``com.microsoft``,
            ``com.microsoft.nchwc``): a blocked-layout Conv is not the same kernel as a Conv.
        provider: the execution provider that ran it.
        position: its place in the execution order of a call (0 first).
        inputs, outputs: the shapes it ran on (weights included: they tell convolutions apart).
        durations_us: kernel time per profiled call, microseconds.
    """

    name: str
    op_type: str
    domain: str
    provider: str
    position: int
    inputs: tuple[TensorShape, ...]
    outputs: tuple[TensorShape, ...]
    durations_us: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.durations_us:
            raise ValueError(f"node {self.name!r}: no durations")
        if min(self.durations_us) < 0:
            raise ValueError(f"node {self.name!r}: negative duration in {self.durations_us}")

    @property
    def signature(self) -> Signature:
        """What a node does, whatever it is called: operator and the shapes it ran on."""
        return self.domain, self.op_type, self.inputs, self.outputs

    @property
    def median_ms(self) -> float:
        return float(np.median(self.durations_us)) / US_PER_MS

    @property
    def spread_ms(self) -> float:
        """The interquartile range of its per-call times: how much one call wanders."""
        low, high = np.percentile(self.durations_us, [25, 75])
        return float(high - low) / US_PER_MS

    def shape_text(self) -> str:
        """Its first output's shape: what a reader recognises a layer by."""
        return self.outputs[0].text() if self.outputs else "?"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "domain": self.domain,
            "provider": self.provider,
            "position": self.position,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "median_ms": self.median_ms,
            "spread_ms": self.spread_ms,
        }


@dataclass(frozen=True)
class OpProfile:
    """Every node of one artifact's run, in execution order.

    Args:
        label: what was profiled, ``star/optimized``.
        nodes: the nodes in execution order (``position`` 0, 1, ...).
        calls: profiled calls (after the warm-up); every node has one duration per call.
        threads: ONNX Runtime's intra-op threads.
        source: the artifact file.
    """

    label: str
    nodes: tuple[NodeTiming, ...]
    calls: int
    threads: int = 1
    source: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.calls < 1:
            raise ValueError(f"{self.label}: calls {self.calls}, expected at least 1")
        if not self.nodes:
            raise ValueError(f"{self.label}: a profile without nodes")
        for node in self.nodes:
            if len(node.durations_us) != self.calls:
                raise ValueError(
                    f"{self.label}: node {node.name!r} has {len(node.durations_us)} durations, "
                    f"expected one per call ({self.calls})"
                )
        names = [node.name for node in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.label}: node names repeat")

    @property
    def total_ms(self) -> float:
        """The sum of the node medians: the per-call time the explanation splits up."""
        return sum(node.median_ms for node in self.nodes)

    def call_totals_ms(self) -> np.ndarray:
        """Kernel time of each profiled call (the sum over its nodes)."""
        per_call = np.array([node.durations_us for node in self.nodes], dtype=float)
        return per_call.sum(axis=0) / US_PER_MS

    @property
    def total_spread_ms(self) -> float:
        """The interquartile range of the per-call totals."""
        low, high = np.percentile(self.call_totals_ms(), [25, 75])
        return float(high - low)

    def to_json(self) -> dict[str, object]:
        return {
            "schema_version": self.schema_version,
            "label": self.label,
            "source": self.source,
            "calls": self.calls,
            "threads": self.threads,
            "total_ms": self.total_ms,
            "total_spread_ms": self.total_spread_ms,
        }
