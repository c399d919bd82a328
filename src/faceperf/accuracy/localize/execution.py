"""Running both graphs: ``Deadline`` (the time budget), ONNX Runtime sessions with the
paired tensors exposed as outputs, run in chunks of bounded memory over the cases, and
``measure``, each pair's worst SNR over the cases (graph outputs seen through the suite's output
views, ``case_views``, when given).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from faceperf.accuracy.localize.graph import GraphView
from faceperf.accuracy.localize.pairing import TensorPair
from faceperf.accuracy.localize.result import LocalizeBudgetError, LocalizeError, tensor_snr

# Tensor values held at once (reference and candidate). STAR exposes ~660 MB per FP32 call and
# ~370 MB per FP16 one: 1.5 GiB runs its FP16 variant in one chunk (peak RSS ~2.7 GB) and its
# FP32 ones in two; every extra chunk reruns both graphs on every case.
DEFAULT_CHUNK_BYTES = 3 << 29

# Given one case's reference graph outputs by name, what of each graph output the accuracy suite
# judges (the same selection applies to the candidate's).
OutputView = Callable[[Mapping[str, np.ndarray]], Callable[[np.ndarray], np.ndarray]]
SUITE_VIEW_NOTE = "judged as the accuracy suite samples it"


@dataclass(frozen=True)
class Deadline:
    """A time budget; ``check`` raises LocalizeBudgetError once it is spent."""

    at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def check(self, doing: str) -> None:
        if self.clock() > self.at:
            raise LocalizeBudgetError(f"localisation ran out of its time budget while {doing}")


def _session(graph: GraphView, names: Sequence[str]) -> ort.InferenceSession:
    exposed = onnx.ModelProto()
    exposed.CopyFrom(graph.model)
    del exposed.graph.output[:]
    exposed.graph.output.extend(
        helper.make_tensor_value_info(name, graph.types[name], None) for name in names
    )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Basic rewrites only: the extra outputs block fusions anyway, and every node should run
    # as the file has it.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:
        return ort.InferenceSession(
            exposed.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # ORT raises its own exception types for graphs it refuses
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LocalizeError(f"ONNX Runtime cannot run the exposed graph: {first}") from None


def _chunks(
    pairs: Sequence[TensorPair], reference: GraphView, candidate: GraphView, max_bytes: int
) -> Iterator[list[TensorPair]]:
    """Pairs in topological order, cut where their values would pass ``max_bytes``."""
    sizes = [(reference.nbytes(p.reference), candidate.nbytes(p.candidate)) for p in pairs]
    # A tensor of unknown size is costed as the largest known one: never under.
    largest = max((n for pair in sizes for n in pair if n is not None), default=1)
    chunk: list[TensorPair] = []
    held = 0
    for pair, (ref_size, cand_size) in zip(pairs, sizes, strict=True):
        size = (ref_size or largest) + (cand_size or largest)
        if chunk and held + size > max_bytes:
            yield chunk
            chunk, held = [], 0
        chunk.append(pair)
        held += size
    if chunk:
        yield chunk


def _computed(graph: GraphView, names: Sequence[str]) -> list[str]:
    """The names among ``names`` the graph must compute (not fed), once each, typed."""
    wanted = dict.fromkeys(n for n in names if n not in graph.inputs)
    untyped = [n for n in wanted if n not in graph.types]
    if untyped:
        raise LocalizeError(f"shape inference gives no type for {untyped[0]!r}")
    return list(wanted)


def measure(
    reference: GraphView,
    candidate: GraphView,
    pairs: Sequence[TensorPair],
    reference_feeds: Sequence[Mapping[str, np.ndarray]],
    candidate_feeds: Sequence[Mapping[str, np.ndarray]],
    max_bytes: int,
    deadline: Deadline | None,
    views: Sequence[Callable[[np.ndarray], np.ndarray]] | None,
) -> dict[str, tuple[float | None, str]]:
    """candidate tensor -> (worst SNR over the cases, note) for every pair; graph outputs seen
    through ``views`` (one per case) when given."""
    outputs = {reference.root.get(o, o) for o in reference.outputs}
    measured: dict[str, list[tuple[float | None, str]]] = {}
    for chunk in _chunks(pairs, reference, candidate, max_bytes):
        ref_names = _computed(reference, [p.reference for p in chunk])
        cand_names = _computed(candidate, [p.candidate for p in chunk])
        ref_session = _session(reference, ref_names) if ref_names else None
        cand_session = _session(candidate, cand_names) if cand_names else None
        for case, (ref_feed, cand_feed) in enumerate(
            zip(reference_feeds, candidate_feeds, strict=True)
        ):
            if deadline is not None:
                deadline.check(f"running case {case + 1} of {len(reference_feeds)}")
            ref_values = _run(ref_session, ref_names, ref_feed)
            cand_values = _run(cand_session, cand_names, cand_feed)
            for pair in chunk:
                ref_value, cand_value = ref_values[pair.reference], cand_values[pair.candidate]
                note = ""
                if views is not None and pair.reference in outputs:
                    ref_value, cand_value = views[case](ref_value), views[case](cand_value)
                    note = SUITE_VIEW_NOTE
                snr, why = _compare(ref_value, cand_value)
                measured.setdefault(pair.candidate, []).append((snr, why or note))
            del ref_values, cand_values
    return {name: _worst_case(results) for name, results in measured.items()}


def _worst_case(results: Sequence[tuple[float | None, str]]) -> tuple[float | None, str]:
    """The lowest SNR over the cases; not comparable if any case is not."""
    for snr, note in results:
        if snr is None:
            return None, note
    return min(snr for snr, _ in results), results[0][1]


def case_views(
    reference: GraphView,
    feeds: Sequence[Mapping[str, np.ndarray]],
    output_view: OutputView,
) -> list[Callable[[np.ndarray], np.ndarray]]:
    """One selection per case, from the reference's graph outputs on that case."""
    names = _computed(reference, [reference.root.get(o, o) for o in reference.outputs])
    session = _session(reference, names)
    by_root = {reference.root.get(o, o): o for o in reference.outputs}
    views = []
    for feed in feeds:
        values = _run(session, names, feed)
        views.append(output_view({by_root[n]: values[n] for n in names}))
    return views


def _run(
    session: ort.InferenceSession | None, names: Sequence[str], feeds: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    values = dict(feeds)
    if session is not None:
        try:
            values.update(zip(names, session.run(list(names), dict(feeds)), strict=True))
        except Exception as err:  # ORT raises its own exception types for refused feeds
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise LocalizeError(f"ONNX Runtime cannot run the graph: {first}") from None
    return values


def _compare(reference: np.ndarray, candidate: np.ndarray) -> tuple[float | None, str]:
    if reference.shape != candidate.shape:
        return None, f"shapes differ: reference {reference.shape}, candidate {candidate.shape}"
    return tensor_snr(reference, candidate), ""
