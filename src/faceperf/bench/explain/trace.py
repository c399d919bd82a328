"""ONNX Runtime's profiler trace (a Chrome-trace JSON list) → per node, its time in each call.

The trace holds one ``model_run`` event per ``InferenceSession.run`` and, inside it, one event
per kernel: ``cat == "Node"``, ``name == <node name>_kernel_time``, ``dur`` in microseconds,
``args`` with ``op_name``, ``provider`` and the ``input_type_shape`` / ``output_type_shape``
it ran on. A kernel event belongs to the call whose ``model_run`` window holds its start: that
tells warm-up calls from profiled ones, and keeps a node that runs several times in one call
(the body of a Loop) one node with the sum of its times.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from faceperf.bench.explain.record import NodeTiming, TensorShape
from faceperf.errors import FaceperfError

KERNEL_SUFFIX = "_kernel_time"
RUN_EVENT = "model_run"

# (node name, op type) → its operator domain, from the graph the session ran.
DomainOf = Callable[[str, str], str]


class TraceError(FaceperfError):
    """A profiler trace is unreadable, or does not hold the calls it was asked for."""


def read_trace(path: Path) -> list[dict]:
    """The events of the trace file ``path``.

    Raises:
        TraceError: not readable, not JSON, or not a list of events.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise TraceError(f"{path}: not a readable profiler trace ({err})") from None
    # ORT writes a bare list; the Chrome trace format also allows {"traceEvents": [...]}.
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        raise TraceError(f"{path}: expected a JSON list of trace events")
    return events


@dataclass
class _Seen:
    """A node as the trace shows it so far (mutable while parsing only)."""

    name: str
    op_type: str
    provider: str
    first: tuple[int, float]  # (call, start): where it first ran, for its execution position
    inputs: tuple[TensorShape, ...]
    outputs: tuple[TensorShape, ...]
    durations: dict[int, float] = field(default_factory=dict)


def parse_trace(
    events: Sequence[Mapping], warmup: int, domain_of: DomainOf | None = None
) -> tuple[NodeTiming, ...]:
    """Every node's kernel time per profiled call, in execution order.

    Args:
        events: the trace (see ``read_trace``).
        warmup: the first calls, to leave out (the arena is sized and weights pre-packed then).
        domain_of: the operator domain of a node (graph.RanGraph.domain_of); None: all ''.

    Raises:
        TraceError: no call after the warm-up, or a malformed kernel event.
    """
    runs = sorted(_window(e) for e in events if e.get("cat") == "Session" and _is_run(e))
    if len(runs) <= warmup:
        raise TraceError(
            f"the trace holds {len(runs)} call(s); expected more than the {warmup} warm-up call(s)"
        )
    starts = [start for start, _ in runs]
    seen: dict[str, _Seen] = {}
    for event in sorted(_kernels(events), key=lambda e: _number(e, "ts")):
        call = _call_of(event, runs, starts)
        if call is not None and call >= warmup:
            _add(seen, event, call - warmup)
    calls = len(runs) - warmup
    ordered = sorted(seen.values(), key=lambda s: s.first)
    domain_of = domain_of or (lambda _name, _op: "")
    return tuple(_timing(s, position, calls, domain_of) for position, s in enumerate(ordered))


def _is_run(event: Mapping) -> bool:
    return event.get("name") == RUN_EVENT


def _window(event: Mapping) -> tuple[float, float]:
    start = _number(event, "ts")
    return start, start + _number(event, "dur")


def _kernels(events: Iterable[Mapping]) -> Iterable[Mapping]:
    for event in events:
        name = event.get("name")
        if event.get("cat") == "Node" and isinstance(name, str) and name.endswith(KERNEL_SUFFIX):
            yield event


def _call_of(event: Mapping, runs: list[tuple[float, float]], starts: list[float]) -> int | None:
    """The index of the call whose window holds the event's start; None outside every call."""
    start = _number(event, "ts")
    index = bisect.bisect_right(starts, start) - 1
    if index < 0 or start > runs[index][1]:
        return None
    return index


def _add(seen: dict[str, _Seen], event: Mapping, call: int) -> None:
    name = event["name"][: -len(KERNEL_SUFFIX)]
    args = event.get("args") or {}
    node = seen.get(name)
    if node is None:
        node = seen[name] = _Seen(
            name=name,
            op_type=str(args.get("op_name", "?")),
            provider=str(args.get("provider", "?")),
            first=(call, _number(event, "ts")),
            inputs=_shapes(args.get("input_type_shape"), name),
            outputs=_shapes(args.get("output_type_shape"), name),
        )
    # A node run more than once in a call (a Loop's body) costs the call all of its runs.
    node.durations[call] = node.durations.get(call, 0.0) + _number(event, "dur")


def _timing(seen: _Seen, position: int, calls: int, domain_of: DomainOf) -> NodeTiming:
    return NodeTiming(
        name=seen.name,
        op_type=seen.op_type,
        domain=domain_of(seen.name, seen.op_type),
        provider=seen.provider,
        position=position,
        inputs=seen.inputs,
        outputs=seen.outputs,
        # A call in which a node did not run (an If's other branch) spent nothing on it.
        durations_us=tuple(seen.durations.get(call, 0.0) for call in range(calls)),
    )


def _shapes(items: object, node: str) -> tuple[TensorShape, ...]:
    """``[{"float": [1, 3, 48, 48]}, ...]`` → TensorShapes; absent: none."""
    if items is None:
        return ()
    try:
        return tuple(
            TensorShape(dtype, tuple(int(d) for d in dims))
            for item in items
            for dtype, dims in item.items()
        )
    except (AttributeError, TypeError, ValueError):
        raise TraceError(f"node {node!r}: malformed tensor shapes {items!r}") from None


def _number(event: Mapping, key: str) -> float:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TraceError(f"trace event {event.get('name')!r}: {key} {value!r}, expected a number")
    return float(value)
