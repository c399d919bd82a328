"""The verdict on two graphs: ``compare_graphs`` analyses, pairs, runs and measures them, then
finds the candidate's outputs below the floor, the first failing operation among what they
depend on (with its inputs and the operations downstream of it), or that the inputs already
differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from faceperf.accuracy.localize.execution import (
    DEFAULT_CHUNK_BYTES,
    Deadline,
    OutputView,
    case_views,
    measure,
)
from faceperf.accuracy.localize.graph import GraphView, analyse, node_label
from faceperf.accuracy.localize.pairing import TensorPair, check_pairing, pair_tensors
from faceperf.accuracy.localize.result import (
    DOWNSTREAM,
    INPUT_OP,
    FailingOperation,
    Localization,
    LocalizeError,
    OperationSnr,
    TensorSnr,
    format_snr,
)


def compare_graphs(
    reference: onnx.ModelProto,
    candidate: onnx.ModelProto,
    reference_feeds: Sequence[Mapping[str, np.ndarray]],
    candidate_feeds: Sequence[Mapping[str, np.ndarray]],
    floor_db: float,
    *,
    model: str = "",
    variant: str = "",
    reference_variant: str = "",
    max_bytes: int = DEFAULT_CHUNK_BYTES,
    deadline: Deadline | None = None,
    output_view: OutputView | None = None,
) -> Localization:
    """Run both graphs on their feeds (one mapping per case) and localise the divergence.

    ``output_view`` selects what of the graph outputs is judged, as the accuracy suite judges
    it (``SUITE_OUTPUT_VIEWS``); intermediate tensors are always judged whole.

    Raises:
        LocalizeError: the graphs cannot be paired (another network) or cannot run.
    """
    if not reference_feeds or len(reference_feeds) != len(candidate_feeds):
        raise LocalizeError("compare_graphs needs one reference and one candidate feed per case")
    ref_graph = analyse(reference, {k: v.shape for k, v in reference_feeds[0].items()})
    cand_graph = analyse(candidate, {k: v.shape for k, v in candidate_feeds[0].items()})
    pairs = pair_tensors(ref_graph, cand_graph)
    matched, total = check_pairing(ref_graph, pairs, model)
    views = case_views(ref_graph, reference_feeds, output_view) if output_view else None
    measured = measure(
        ref_graph, cand_graph, pairs, reference_feeds, candidate_feeds, max_bytes, deadline, views
    )
    tensors = tuple(_tensor_result(cand_graph, pair, measured[pair.candidate]) for pair in pairs)
    snr = {t.name: t.snr_db for t in tensors}
    failing_outputs = _failing_outputs(cand_graph, pairs, snr, floor_db)
    failing_pair, failing_index = _first_failing(cand_graph, pairs, snr, floor_db, failing_outputs)
    input_note = _differing_input(pairs, snr, floor_db)
    if not input_note and failing_pair is not None and failing_pair.reference in ref_graph.inputs:
        node = cand_graph.nodes[failing_index]
        input_note = (
            f"{failing_pair.candidate}, computed in front of the network by "
            f"{f'{node.op_type} {node.name}' if node.name else f'an unnamed {node.op_type}'}, "
            f"stands for graph input {failing_pair.reference} at "
            f"{format_snr(snr[failing_pair.candidate])}"
        )
    first_failing = None
    if not input_note and failing_pair is not None:
        first_failing = _describe_failing(cand_graph, failing_pair, failing_index, pairs, snr)
    return Localization(
        model,
        variant,
        reference_variant,
        floor_db,
        len(reference_feeds),
        first_failing,
        input_note,
        failing_outputs,
        tensors,
        matched_operations=matched,
        reference_operations=total,
    )


def _tensor_result(
    graph: GraphView, pair: TensorPair, measured: tuple[float | None, str]
) -> TensorSnr:
    snr, note = measured
    discrete = not graph.is_float(pair.candidate)
    if pair.candidate in graph.producer:
        index = graph.producer[pair.candidate]
        node = graph.nodes[index]
        return TensorSnr(
            pair.candidate,
            pair.reference,
            node_label(node),
            node.op_type,
            index,
            pair.match,
            snr,
            note,
            discrete,
        )
    return TensorSnr(
        pair.candidate, pair.reference, pair.candidate, INPUT_OP, -1, pair.match, snr, note
    )


def _failing_outputs(
    graph: GraphView, pairs: Sequence[TensorPair], snr: Mapping[str, float | None], floor_db: float
) -> tuple[str, ...]:
    """The candidate's graph outputs (as computed, before any Cast) below the floor."""
    paired = {p.candidate for p in pairs}
    roots = dict.fromkeys(graph.root.get(o, o) for o in graph.outputs)
    return tuple(r for r in roots if r in paired and _below(graph, snr, r, floor_db))


def _below(graph: GraphView, snr: Mapping[str, float | None], name: str, floor_db: float) -> bool:
    return _judged(graph, snr, name) and snr[name] < floor_db


def _judged(graph: GraphView, snr: Mapping[str, float | None], name: str) -> bool:
    # A comparison's or an index's SNR counts flipped decisions, not an error's size: an FP16
    # mask flips where a heatmap grazes its threshold. Their float consumers are judged instead.
    return graph.is_float(name) and snr.get(name) is not None


def _first_failing(
    graph: GraphView,
    pairs: Sequence[TensorPair],
    snr: Mapping[str, float | None],
    floor_db: float,
    failing_outputs: Sequence[str],
) -> tuple[TensorPair | None, int]:
    """The earliest operation below the floor, among those the failing outputs depend on, whose
    judged paired inputs are all at or above it."""
    by_candidate = {p.candidate: p for p in pairs}
    # Only what reaches a failing output: intermediates of an honest FP16 graph may sit below
    # the outputs' floor (global pooling averages their rounding noise away).
    suspects = graph.ancestors(failing_outputs)
    for index in graph.operations():
        if index not in suspects:
            continue
        node = graph.nodes[index]
        below = [
            by_candidate[o]
            for o in node.output
            if o in by_candidate and _below(graph, snr, o, floor_db)
        ]
        if not below:
            continue
        inputs = [
            snr[root]
            for _, root in graph.data_inputs(index)
            if root in by_candidate and _judged(graph, snr, root)
        ]
        if all(value >= floor_db for value in inputs):
            return min(below, key=lambda p: snr[p.candidate]), index
    return None, -1


def _differing_input(
    pairs: Sequence[TensorPair], snr: Mapping[str, float | None], floor: float
) -> str:
    for pair in pairs:
        if (
            pair.match == "input"
            and snr[pair.candidate] is not None
            and snr[pair.candidate] < floor
        ):
            return f"graph input {pair.candidate} at {format_snr(snr[pair.candidate])}"
    return ""


def _describe_failing(
    graph: GraphView,
    pair: TensorPair,
    index: int,
    pairs: Sequence[TensorPair],
    snr: Mapping[str, float | None],
) -> FailingOperation:
    node = graph.nodes[index]
    paired = {p.candidate for p in pairs}
    inputs = {
        root: snr[root]
        for _, root in graph.data_inputs(index)
        if root in paired and _judged(graph, snr, root)
    }
    return FailingOperation(
        node=node_label(node),
        op_type=node.op_type,
        snr_db=snr[pair.candidate],
        tensor=pair.candidate,
        reference=pair.reference,
        input_snr_db=inputs,
        downstream=_downstream(graph, index, snr),
    )


def _downstream(
    graph: GraphView, index: int, snr: Mapping[str, float | None]
) -> tuple[OperationSnr, ...]:
    """The DOWNSTREAM earliest operations fed, directly or not, by node ``index``."""
    reached: set[int] = set()
    frontier = [o for o in graph.nodes[index].output if o]
    while frontier:
        tensor = frontier.pop()
        for consumer, _ in graph.consumers.get(tensor, []):
            if consumer not in reached:
                reached.add(consumer)
                frontier.extend(o for o in graph.nodes[consumer].output if o)
    result = []
    for consumer in sorted(reached)[:DOWNSTREAM]:
        node = graph.nodes[consumer]
        values = [snr[o] for o in node.output if o in snr and snr[o] is not None]
        worst = min(values) if values else None
        result.append(OperationSnr(node_label(node), node.op_type, consumer, worst))
    return tuple(result)
