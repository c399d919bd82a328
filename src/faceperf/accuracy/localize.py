"""Where a candidate's outputs start to diverge: the first ONNX operation below the SNR floor.

The reference graph and the candidate graph run on the model's fixture inputs with every
intermediate tensor exposed as a graph output (in chunks, to bound memory). Tensors of the two
graphs are paired

- by name, where names survive (ONNX Runtime's optimised graphs and the FP16 converter keep most);
- by structure otherwise: a candidate node whose inputs are paired is paired with the reference
  node of the same op type that reads the paired tensors at the same input slots, with the same
  output shape (so pairing spreads from the graph input through renamed graphs);
- by input slot: a tensor that exists only in the candidate, read where the paired reference node
  reads tensor T, is compared with T (the Gather that a red/blue swap puts in front of the first
  Conv is compared with the reference's graph input).

Identity and float-to-float Cast nodes are not operations: their output is the same tensor as
their input (the FP16 converter's Casts), so values are compared as float32 at the node that
computed them. Each paired tensor gets the suite's SNR (``metrics.snr_db``), worst over the cases.

The first failing operation is the earliest candidate node whose output is below the floor while
every paired input is at or above it, sought only when an output of the graph is below the floor
and only among the nodes that output depends on: the floor is the outputs', and an honest FP16
graph's deep features sit below it where its pooling heads average their noise away. Boolean and
integer tensors (masks, indices) are reported but not judged: their SNR counts flipped decisions;
their float consumers are judged instead. When the graph input already differs, or the first
tensor below the floor stands for the reference's graph input (candidate-only nodes at the
input), the fault is in the pre-processing, not in the graph: ``inputs_differ``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, shape_inference

from faceperf import fixture_faces, metrics
from faceperf.accuracy import cases as suite_cases
from faceperf.accuracy.tolerances import Tolerances, load_tolerances
from faceperf.artifacts.layout import ONNX_VARIANTS, artifact_path
from faceperf.artifacts.manifest import read_manifest
from faceperf.errors import FaceperfError
from faceperf.models import inputs as model_inputs_module
from faceperf.paths import default_artifacts_dir
from faceperf.sample_inputs import RETINAFACE_SIZE

DEFAULT_CASES = 2
# Tensor values held at once (reference and candidate). STAR exposes ~660 MB per FP32 call and
# ~370 MB per FP16 one: 1.5 GiB runs its FP16 variant in one chunk (peak RSS ~2.7 GB) and its
# FP32 ones in two; every extra chunk reruns both graphs on every case.
DEFAULT_CHUNK_BYTES = 3 << 29
DOWNSTREAM = 3
# A candidate matching fewer of the reference's operations than this is another network.
MIN_MATCHED_FRACTION = 0.5
# The accuracy suite localises a failure only within this many seconds (all nets of a subject).
SUITE_BUDGET_S = 30.0
_FLOAT_TYPES = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.DOUBLE,
        onnx.TensorProto.BFLOAT16,
    }
)
# Initializers up to this many elements may be shapes or indices, which shape inference reads.
_SMALL_INITIALIZER = 64
# Their outputs depend on the shape of their input only, not on its values.
_SHAPE_OPS = frozenset({"Shape", "Size"})
INPUT_OP = "input"


# Given one case's reference graph outputs by name, what of each graph output the accuracy suite
# judges (the same selection applies to the candidate's).
OutputView = Callable[[Mapping[str, np.ndarray]], Callable[[np.ndarray], np.ndarray]]


class LocalizeError(FaceperfError):
    """The localisation cannot run: bad model, folder, variant, or graphs that do not match."""


class LocalizeBudgetError(LocalizeError):
    """The localisation ran out of its time budget."""


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSnr:
    """One candidate tensor compared with the reference tensor it was paired with."""

    name: str  # the candidate tensor, as its node computes it (before any Cast)
    reference: str  # the reference tensor it is compared with
    node: str  # the candidate node computing it; the tensor's name for a graph input
    op_type: str  # that node's op type; INPUT_OP for a graph input
    position: int  # the node's index in the candidate's topological order; -1 for inputs
    match: str  # "input", "name", "structure" or "slot"
    snr_db: float | None  # worst over the cases; None when the two cannot be compared
    note: str = ""  # why they cannot be compared, or how they were
    discrete: bool = False  # boolean or integer: reported, not judged (see the module doc)


@dataclass(frozen=True)
class OperationSnr:
    """One candidate operation: the worst SNR of its paired outputs (None: none is paired)."""

    node: str
    op_type: str
    position: int
    snr_db: float | None
    discrete: bool = False  # every paired output is boolean or integer


@dataclass(frozen=True)
class FailingOperation:
    """The earliest operation below the floor whose paired inputs are all at or above it."""

    node: str
    op_type: str
    snr_db: float
    tensor: str  # its output below the floor
    reference: str  # the reference tensor that output is compared with
    input_snr_db: Mapping[str, float]  # paired non-constant inputs -> SNR
    downstream: tuple[OperationSnr, ...]  # the next DOWNSTREAM operations fed by it


@dataclass(frozen=True)
class Localization:
    """Where ``variant`` of ``model`` starts to diverge from ``reference_variant``."""

    model: str
    variant: str
    reference_variant: str
    floor_db: float
    cases: int
    first_failing: FailingOperation | None
    inputs_differ: bool
    inputs_note: str  # how the inputs differ ("" when they do not)
    failing_outputs: tuple[str, ...]  # the candidate's outputs below the floor
    tensors: tuple[TensorSnr, ...]  # in the candidate's topological order
    matched_operations: int
    reference_operations: int

    def operations(self) -> tuple[OperationSnr, ...]:
        """Every candidate operation with a paired output, in topological order; its SNR is
        the worst of its float outputs (of its discrete ones when it has no float output)."""
        outputs: dict[tuple[int, str], list[TensorSnr]] = {}
        for tensor in self.tensors:
            if tensor.op_type != INPUT_OP:
                outputs.setdefault((tensor.position, tensor.node), []).append(tensor)
        found = []
        for (position, node), tensors in sorted(outputs.items()):
            judged = [t for t in tensors if not t.discrete] or tensors
            worst = None
            for tensor in judged:
                worst = _worse(worst, tensor.snr_db)
            discrete = judged[0].discrete
            found.append(OperationSnr(node, tensors[0].op_type, position, worst, discrete))
        return tuple(found)

    def lowest(self, count: int = 5) -> tuple[OperationSnr, ...]:
        """The ``count`` float operations with the lowest SNR: where the candidate costs
        accuracy (equal ones, at infinity, and masks or indices left out)."""
        ranked = [
            op
            for op in self.operations()
            if op.snr_db is not None and op.snr_db != math.inf and not op.discrete
        ]
        return tuple(sorted(ranked, key=lambda op: (op.snr_db, op.position))[:count])

    def verdict(self) -> str:
        """One line: where it diverges, or that it does not."""
        head = f"{self.model} {self.variant}"
        if self.inputs_differ:
            return (
                f"{head}: the inputs already differ ({self.inputs_note}): the fault is in the "
                "pre-processing, not in the graph"
            )
        failing = self.first_failing
        if failing is None and not self.failing_outputs:
            return (
                f"{head}: every output holds {self.floor_db:g} dB on {self.cases} fixture "
                "case(s): the graph and its inputs agree with the reference"
            )
        if failing is None:
            return (
                f"{head}: {', '.join(self.failing_outputs)} below {self.floor_db:g} dB but no "
                "single operation starts it (every candidate has an input below the floor)"
            )
        inputs = ", ".join(format_snr(v) for v in failing.input_snr_db.values())
        return (
            f"{head}: first failing operation {failing.node} ({failing.op_type}) at "
            f"{format_snr(failing.snr_db)} < {self.floor_db:g} dB"
            + (f" (its inputs: {inputs})" if inputs else "")
        )

    def to_json(self) -> dict:
        """The JSON document of ``faceperf accuracy localize --json`` (see ``snr_json``)."""
        failing = self.first_failing
        return {
            "model": self.model,
            "variant": self.variant,
            "first_failing": None
            if failing is None
            else {
                "node": failing.node,
                "op_type": failing.op_type,
                "snr_db": snr_json(failing.snr_db),
                "input_snr_db": {k: snr_json(v) for k, v in failing.input_snr_db.items()},
            },
            "inputs_differ": self.inputs_differ,
            "tensors": [
                {
                    "name": t.name,
                    "node": t.node,
                    "op_type": t.op_type,
                    "snr_db": snr_json(t.snr_db),
                    "reference": t.reference,
                    "match": t.match,
                    "position": t.position,
                    "note": t.note,
                    "discrete": t.discrete,
                }
                for t in self.tensors
            ],
        }


def _worse(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def format_snr(value: float | None) -> str:
    """An SNR for people: "41.2 dB", "equal" (infinite), "-inf dB", "n/a" (not comparable)."""
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "equal" if value > 0 else "-inf dB"
    return f"{value:.1f} dB"


def snr_json(value: float | None) -> float | str | None:
    """JSON has no infinity: +inf (the tensors are equal) is the string "inf", -inf (the
    reference is zero, the candidate is not) is "-inf", None (not comparable) is null."""
    if value is None or not math.isinf(value):
        return value
    return "inf" if value > 0 else "-inf"


def tensor_snr(reference: np.ndarray, candidate: np.ndarray) -> float:
    """The suite's SNR of two values of one tensor, compared as float32.

    Equal tensors (all-zero ones included) give +inf, never a failure. Non-finite values that
    the reference does not have at the same place give -inf; places where both hold the same
    non-finite value are left out.
    """
    ref = np.asarray(reference).astype(np.float32)
    cand = np.asarray(candidate).astype(np.float32)
    if ref.shape != cand.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, candidate {cand.shape}")
    finite = np.isfinite(ref) & np.isfinite(cand)
    if not finite.all():
        agree = (ref == cand) | (np.isnan(ref) & np.isnan(cand))
        if not (finite | agree).all():
            return -math.inf
        ref, cand = ref[finite], cand[finite]
    if ref.size == 0:
        return math.inf
    return metrics.snr_db(ref, cand)


# --- graphs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphView:
    """What the pairing needs of one ONNX graph, with shapes inferred for the fed input
    (see ``analyse``)."""

    model: onnx.ModelProto  # as given: run with its nodes' outputs exposed
    nodes: tuple[onnx.NodeProto, ...]  # topological order
    inputs: tuple[str, ...]  # graph inputs that are not initializers
    outputs: tuple[str, ...]
    root: dict[str, str]  # tensor -> the tensor it is an Identity/float Cast of (itself if none)
    names: dict[str, list[str]]  # root -> its own name, then the names of its aliases
    producer: dict[str, int]  # root -> index of the node computing it
    data: frozenset[str]  # roots whose values depend on the graph inputs' values
    consumers: dict[str, list[tuple[int, int]]]  # root -> (node index, input slot)
    types: dict[str, int]
    shapes: dict[str, tuple[int | None, ...]]

    def is_alias(self, index: int) -> bool:
        node = self.nodes[index]
        return node.output[0] in self.root and self.root[node.output[0]] != node.output[0]

    def operations(self) -> list[int]:
        """Indices of the nodes computing data (not constants, shapes or aliases)."""
        return [
            i
            for i, node in enumerate(self.nodes)
            if not self.is_alias(i) and any(o in self.data for o in node.output if o)
        ]

    def data_inputs(self, index: int) -> list[tuple[int, str]]:
        """(slot, root) of the node's inputs that carry data."""
        node = self.nodes[index]
        return [
            (slot, self.root.get(name, name))
            for slot, name in enumerate(node.input)
            if name and self.root.get(name, name) in self.data
        ]

    def nbytes(self, name: str) -> int | None:
        """The size of the tensor's value, when shape inference knows it."""
        shape = self.shapes.get(name)
        if shape is None or any(d is None for d in shape) or name not in self.types:
            return None
        itemsize = helper.tensor_dtype_to_np_dtype(self.types[name]).itemsize
        return itemsize * int(np.prod(shape, dtype=np.int64))

    def is_float(self, name: str) -> bool:
        return self.types.get(name) in _FLOAT_TYPES

    def ancestors(self, names: Sequence[str]) -> set[int]:
        """Indices of the nodes that ``names`` (roots) depend on, aliases skipped."""
        found: set[int] = set()
        pending = [self.root.get(n, n) for n in names]
        while pending:
            index = self.producer.get(pending.pop())
            if index is None or index in found:
                continue
            found.add(index)
            pending.extend(self.root.get(n, n) for n in self.nodes[index].input if n)
        return found


def _shape_model(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> onnx.ModelProto:
    """Shape inference of ``model`` with its inputs fixed to ``shapes``, run on a copy whose
    large initializers are typed graph inputs: inference needs their shapes only (and the values
    of the small shape tensors), and serialising megabytes of weights is most of its time."""
    light = onnx.ModelProto()
    light.CopyFrom(model)
    for graph_input in light.graph.input:
        if graph_input.name in shapes:
            dims = graph_input.type.tensor_type.shape.dim
            for dim, size in zip(dims, shapes[graph_input.name], strict=False):
                dim.Clear()
                dim.dim_value = int(size)
    kept = [t for t in light.graph.initializer if np.prod(t.dims) <= _SMALL_INITIALIZER]
    moved = [t for t in light.graph.initializer if np.prod(t.dims) > _SMALL_INITIALIZER]
    del light.graph.initializer[:]
    light.graph.initializer.extend(kept)
    known = {i.name for i in light.graph.input}
    light.graph.input.extend(
        helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
        for t in moved
        if t.name not in known
    )
    # Stale value_info (an edited graph's) would contradict the fixed input; infer afresh.
    del light.graph.value_info[:]
    return shape_inference.infer_shapes(light)


def _value_infos(graph: onnx.GraphProto) -> tuple[dict[str, int], dict[str, tuple]]:
    types, shapes = {}, {}
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor = info.type.tensor_type
        if not tensor.elem_type:
            continue
        types[info.name] = tensor.elem_type
        if tensor.HasField("shape"):
            shapes[info.name] = tuple(
                d.dim_value if d.dim_value > 0 else None for d in tensor.shape.dim
            )
    for init in graph.initializer:
        types[init.name] = init.data_type
        shapes[init.name] = tuple(init.dims)
    return types, shapes


def _topological(graph: onnx.GraphProto) -> tuple[onnx.NodeProto, ...]:
    """Nodes in a topological order, keeping the file's order where it already is one."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    produced = {o for node in graph.node for o in node.output}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        left = []
        for node in pending:
            # An input nothing produces comes from outside the graph: treat it as available.
            if all(name in ready or name not in produced for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                left.append(node)
        if len(left) == len(pending):
            raise LocalizeError(f"graph {graph.name!r} has a cycle or a dangling input")
        pending = left
    return tuple(ordered)


def node_label(node: onnx.NodeProto) -> str:
    """A node's name, or its first output's for an unnamed node (graph edits leave some)."""
    return node.name or node.output[0]


def _is_alias_node(node: onnx.NodeProto, types: Mapping[str, int]) -> bool:
    if node.op_type == "Identity":
        return True
    if node.op_type != "Cast":
        return False
    target = next((a.i for a in node.attribute if a.name == "to"), None)
    return types.get(node.input[0]) in _FLOAT_TYPES and target in _FLOAT_TYPES


def analyse(model: onnx.ModelProto, input_shapes: Mapping[str, tuple[int, ...]]) -> GraphView:
    """The pairing's view of ``model`` for inputs of ``input_shapes``."""
    graph = _shape_model(model, input_shapes).graph
    initializers = {t.name for t in model.graph.initializer}
    graph_inputs = tuple(i.name for i in model.graph.input if i.name not in initializers)
    types, shapes = _value_infos(graph)
    for init in model.graph.initializer:
        types[init.name] = init.data_type
        shapes[init.name] = tuple(init.dims)
    nodes = _topological(graph)
    root = {name: name for name in graph_inputs}
    names = {name: [name] for name in graph_inputs}
    producer: dict[str, int] = {}
    data = set(graph_inputs)
    consumers: dict[str, list[tuple[int, int]]] = {}
    for index, node in enumerate(nodes):
        if _is_alias_node(node, types):
            source = root.get(node.input[0], node.input[0])
            root[node.output[0]] = source
            names.setdefault(source, [source]).append(node.output[0])
            continue
        for slot, name in enumerate(node.input):
            if name:
                consumers.setdefault(root.get(name, name), []).append((index, slot))
        reads_data = node.op_type not in _SHAPE_OPS and any(
            root.get(name, name) in data for name in node.input if name
        )
        for output in node.output:
            if output:
                root[output] = output
                names[output] = [output]
                producer[output] = index
                if reads_data:
                    data.add(output)
    return GraphView(
        model=model,
        nodes=nodes,
        inputs=graph_inputs,
        outputs=tuple(o.name for o in graph.output),
        root=root,
        names=names,
        producer=producer,
        data=frozenset(data),
        consumers=consumers,
        types=types,
        shapes=shapes,
    )


# --- pairing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorPair:
    """A candidate tensor and the reference tensor it is compared with."""

    candidate: str  # a root tensor of the candidate graph
    reference: str  # a root tensor of the reference graph
    match: str  # "input", "name", "structure" or "slot"


_Pairs = dict[str, TensorPair]  # candidate root -> its pair
_Add = Callable[..., None]


def pair_tensors(reference: GraphView, candidate: GraphView) -> list[TensorPair]:
    """Pair candidate tensors with reference tensors: inputs, names, structure, input slots."""
    pairs: _Pairs = {}
    taken: set[str] = set()  # reference tensors paired by input, name or structure

    def add(cand: str, ref: str, match: str, exclusive: bool = True) -> None:
        pairs[cand] = TensorPair(cand, ref, match)
        if exclusive:
            taken.add(ref)

    for position, name in enumerate(candidate.inputs):
        if name in reference.inputs:
            add(name, name, "input")
        elif position < len(reference.inputs):
            add(name, reference.inputs[position], "input")
    _pair_by_name(reference, candidate, pairs, taken, add)
    _pair_by_structure(reference, candidate, pairs, taken, add)
    _pair_by_slot(reference, candidate, pairs, add)
    return sorted(pairs.values(), key=lambda p: candidate.producer.get(p.candidate, -1))


def _pair_by_name(
    reference: GraphView, candidate: GraphView, pairs: _Pairs, taken: set[str], add: _Add
) -> None:
    by_name = {
        name: ref_root
        for ref_root in reference.data
        for name in reference.names.get(ref_root, [ref_root])
    }
    for index in candidate.operations():
        for output in candidate.nodes[index].output:
            if output not in candidate.data or output in pairs:
                continue
            for name in candidate.names[output]:
                ref_root = by_name.get(name)
                if ref_root is not None and ref_root not in taken:
                    add(output, ref_root, "name")
                    break


def _pair_by_structure(
    reference: GraphView, candidate: GraphView, pairs: _Pairs, taken: set[str], add: _Add
) -> None:
    for index in candidate.operations():
        node = candidate.nodes[index]
        outputs = [o for o in node.output if o in candidate.data]
        reads = candidate.data_inputs(index)
        if all(o in pairs for o in outputs) or not reads:
            continue
        if any(root not in pairs for _, root in reads):
            continue
        match = _structural_twin(reference, candidate, index, pairs, taken)
        if match is None:
            continue
        twin = reference.nodes[match]
        for cand_out, ref_out in zip(node.output, twin.output, strict=True):
            if cand_out in candidate.data and cand_out not in pairs and ref_out:
                add(cand_out, ref_out, "structure")


def _structural_twin(
    reference: GraphView, candidate: GraphView, index: int, pairs: _Pairs, taken: set[str]
) -> int | None:
    """The first reference node of the same op type reading the paired tensors at the same
    slots, with the same output shapes and no output paired yet."""
    node = candidate.nodes[index]
    reads = dict(candidate.data_inputs(index))
    first_slot, first_root = next(iter(reads.items()))
    options = sorted(
        ref_index
        for ref_index, slot in reference.consumers.get(pairs[first_root].reference, [])
        if slot == first_slot
    )
    for ref_index in options:
        twin = reference.nodes[ref_index]
        if twin.op_type != node.op_type or len(twin.input) != len(node.input):
            continue
        if len(twin.output) != len(node.output) or any(o in taken for o in twin.output):
            continue
        ref_reads = dict(reference.data_inputs(ref_index))
        if ref_reads.keys() != reads.keys():
            continue
        if any(ref_reads[slot] != pairs[root].reference for slot, root in reads.items()):
            continue
        if all(
            _same_shape(reference.shapes.get(r), candidate.shapes.get(c))
            for c, r in zip(node.output, twin.output, strict=True)
        ):
            return ref_index
    return None


def _same_shape(a: tuple | None, b: tuple | None) -> bool:
    return a is None or b is None or a == b


def _pair_by_slot(reference: GraphView, candidate: GraphView, pairs: _Pairs, add: _Add) -> None:
    # Consumers first, so that a pairing made here walks on up a chain of candidate-only
    # tensors (Gather -> Concat -> Conv in STAR: the Concat's input is the swapped image).
    for index in reversed(candidate.operations()):
        node = candidate.nodes[index]
        paired = next((pairs[o] for o in node.output if o in pairs), None)
        if paired is None or paired.reference not in reference.producer:
            continue
        twin = reference.nodes[reference.producer[paired.reference]]
        if twin.op_type != node.op_type or len(twin.input) != len(node.input):
            continue
        ref_reads = dict(reference.data_inputs(reference.producer[paired.reference]))
        for slot, root in candidate.data_inputs(index):
            if root not in pairs and slot in ref_reads:
                add(root, ref_reads[slot], "slot", exclusive=False)


# --- running ----------------------------------------------------------------------------------


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


def _measure(
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


def _views(
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


# --- the verdict ------------------------------------------------------------------------------


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
    matched, total = _check_pairing(ref_graph, pairs, model)
    views = _views(ref_graph, reference_feeds, output_view) if output_view else None
    measured = _measure(
        ref_graph, cand_graph, pairs, reference_feeds, candidate_feeds, max_bytes, deadline, views
    )
    tensors = tuple(_tensor_result(cand_graph, pair, measured[pair.candidate]) for pair in pairs)
    snr = {t.name: t.snr_db for t in tensors}
    failing_outputs = _failing_outputs(cand_graph, pairs, snr, floor_db)
    failing_pair, failing_index = _first_failing(cand_graph, pairs, snr, floor_db, failing_outputs)
    input_note = _differing_input(ref_graph, pairs, snr, floor_db)
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
        model=model,
        variant=variant,
        reference_variant=reference_variant,
        floor_db=floor_db,
        cases=len(reference_feeds),
        first_failing=first_failing,
        inputs_differ=bool(input_note),
        inputs_note=input_note,
        failing_outputs=failing_outputs,
        tensors=tensors,
        matched_operations=matched,
        reference_operations=total,
    )


def _check_pairing(
    reference: GraphView, pairs: Sequence[TensorPair], model: str
) -> tuple[int, int]:
    paired = {p.reference for p in pairs if p.match in ("name", "structure")}
    operations = reference.operations()
    matched = sum(any(o in paired for o in reference.nodes[i].output) for i in operations)
    what = f"the candidate's {model}" if model else "the candidate graph"
    if operations and matched < MIN_MATCHED_FRACTION * len(operations):
        raise LocalizeError(
            f"{what} cannot be matched to the reference: only {matched} of its "
            f"{len(operations)} operations pair up (another architecture?)"
        )
    outputs = {reference.root.get(o, o) for o in reference.outputs}
    if not outputs & paired:
        raise LocalizeError(
            f"{what} cannot be matched to the reference: none of its outputs "
            f"({', '.join(reference.outputs)}) pairs up (another architecture?)"
        )
    return matched, len(operations)


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
    reference: GraphView, pairs: Sequence[TensorPair], snr: Mapping[str, float | None], floor: float
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


# --- artifacts --------------------------------------------------------------------------------


def _retinaface_anchors(outputs: Mapping[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    # The suite keeps RetinaFace's best-scoring anchors and an even sample of the rest: its floor
    # holds there, while the full tensors of honest FP16 sit ~3 dB lower (weak anchors' boxes).
    keep = suite_cases.retinaface_anchor_sample(outputs["conf"][0][:, 1])
    return lambda value: value[0][keep]


# How the accuracy suite judges each model's outputs, where not whole.
SUITE_OUTPUT_VIEWS: dict[str, OutputView] = {"retinaface": _retinaface_anchors}
SUITE_VIEW_NOTE = "judged as the accuracy suite samples it"


def subject_of(model: str) -> str:
    """The tolerances subject of a model: the MTCNN nets share ``mtcnn``."""
    return "mtcnn" if model.startswith("mtcnn_") else model


def snr_floor(model: str, variant: str, tolerances: Tolerances | None = None) -> float:
    """The accuracy suite's SNR floor for ``variant`` of ``model`` (tolerances.toml [snr_db])."""
    return (tolerances or load_tolerances()).value("snr_db", subject_of(model), variant)


def model_inputs(model: str, cases: int = DEFAULT_CASES) -> tuple[np.ndarray, ...]:
    """Up to ``cases`` batch-1 inputs of ``model`` from the fixtures, made as the accuracy suite
    makes them, through the pipeline's own pre-processing.

    The pre-processing functions are looked up on their modules at call time, so a patched
    pre-processing (the fault catalogue's ``uint8_resize``) reaches the inputs made under it.
    """
    if model == "retinaface":
        frames = [fixture_faces.load_image(n) for n in suite_cases.photo_names()[:cases]]
        return tuple(model_inputs_module.retinaface_input(f, RETINAFACE_SIZE) for f in frames)
    if model in ("star", "mtl"):
        made = []
        for _, image, box in suite_cases.face_cases()[:cases]:
            frame = fixture_faces.load_image(image)
            if model == "star":
                made.append(model_inputs_module.star_input(frame, box[None])[0])
            else:
                made.append(model_inputs_module.mtl_input(model_inputs_module.crop_box(frame, box)))
        return tuple(made)
    if model in suite_cases.MTCNN_TENSOR_CASES:
        batch = suite_cases.mtcnn_net_inputs(model)
        return tuple(batch[i : i + 1] for i in range(min(cases, len(batch))))
    raise LocalizeError(f"no fixture inputs for model {model!r}")


def fit_input(array: np.ndarray, dims: Sequence[int | None], dtype: np.dtype | type) -> np.ndarray:
    """``array`` (N, C, H, W) in ``dtype``, resampled to the fixed height and width of ``dims``
    (None: free) when they differ: what a pipeline made for that size would feed the graph."""
    if len(dims) == 4 and array.ndim == 4 and dims[2] and dims[3]:
        height, width = dims[2], dims[3]
        if (height, width) != array.shape[2:]:
            resized = [
                cv2.resize(
                    np.ascontiguousarray(image.transpose(1, 2, 0), np.float32),
                    (width, height),
                    interpolation=cv2.INTER_AREA,
                )
                for image in array
            ]
            array = np.stack([r.reshape(height, width, -1).transpose(2, 0, 1) for r in resized])
    return np.ascontiguousarray(array, dtype=dtype)


def _feeds(model: onnx.ModelProto, arrays: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    initializers = {t.name for t in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(graph_inputs) != 1:
        raise LocalizeError(f"expected a graph with one input, found {len(graph_inputs)}")
    tensor = graph_inputs[0].type.tensor_type
    dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
    dims = [d.dim_value if d.dim_value > 0 else None for d in tensor.shape.dim]
    return [{graph_inputs[0].name: fit_input(a, dims, dtype)} for a in arrays]


def check_model(model: str) -> None:
    """LocalizeError unless ``model`` is a model of the registry."""
    from faceperf.models.registry import default_registry

    names = default_registry().names()
    if model not in names:
        raise LocalizeError(f"unknown model {model!r}; expected one of {', '.join(names)}")


def load_graph(directory: Path, model: str, variant: str) -> onnx.ModelProto:
    """The ONNX graph of ``variant`` of ``model`` in an artifact folder."""
    if variant not in ONNX_VARIANTS:
        raise LocalizeError(
            f"variant {variant!r} is not an ONNX variant; "
            f"expected one of {', '.join(ONNX_VARIANTS)}"
        )
    manifest = read_manifest(directory)
    if model not in manifest.models:
        raise LocalizeError(f"{directory} has no {model}")
    if variant not in manifest.models[model].variants:
        raise LocalizeError(f"{directory} has no {variant} variant of {model}")
    path = artifact_path(directory, model, variant)
    try:
        return onnx.load(path)
    except Exception as err:  # OSError, or protobuf's DecodeError for a corrupt file
        raise LocalizeError(f"{path}: cannot read it as ONNX ({type(err).__name__})") from None


def localize(
    candidate: Path,
    model: str,
    variant: str = "optimized",
    *,
    reference: Path | None = None,
    reference_variant: str = "baseline",
    floor_db: float | None = None,
    candidate_context: Callable[[], AbstractContextManager[object]] | None = None,
    cases: int = DEFAULT_CASES,
    max_bytes: int = DEFAULT_CHUNK_BYTES,
    deadline: Deadline | None = None,
) -> Localization:
    """Where ``variant`` of ``model`` in the ``candidate`` folder starts to diverge from
    ``reference_variant`` in ``reference`` (default: the default artifact folder).

    Args:
        candidate: an artifact folder.
        model: a model name of the registry.
        variant: the candidate's ONNX variant.
        reference: the reference artifact folder.
        reference_variant: the reference's ONNX variant.
        floor_db: the SNR floor (default: the accuracy suite's for ``variant``).
        candidate_context: a context in which the candidate's inputs are made (a pipeline
            fault's ``patch``); the reference's are made outside it, before.
        cases: fixture cases to run (each input of batch 1).
        max_bytes: bytes of tensor values held at once (both graphs).
        deadline: raise LocalizeBudgetError once it passes.

    Raises:
        LocalizeError: unknown model, missing folder or artifact, unmatched graphs.
    """
    check_model(model)
    reference = reference or default_artifacts_dir()
    cand_model = load_graph(Path(candidate), model, variant)
    ref_model = load_graph(Path(reference), model, reference_variant)
    floor = snr_floor(model, variant) if floor_db is None else floor_db
    reference_arrays = model_inputs(model, cases)
    context = candidate_context() if candidate_context else contextlib.nullcontext()
    with context:
        candidate_arrays = model_inputs(model, cases)
    return compare_graphs(
        ref_model,
        cand_model,
        _feeds(ref_model, reference_arrays),
        _feeds(cand_model, candidate_arrays),
        floor,
        model=model,
        variant=variant,
        reference_variant=reference_variant,
        max_bytes=max_bytes,
        deadline=deadline,
        output_view=SUITE_OUTPUT_VIEWS.get(model),
    )


# --- the accuracy suite's line ----------------------------------------------------------------


def hand_command(candidate: Path, model: str, variant: str) -> str:
    return f"faceperf accuracy localize --candidate {candidate} --model {model} --variant {variant}"


def suite_reference(candidate: Path, model: str) -> Path:
    """The candidate folder when it has its own baseline of ``model`` (the same build, so the
    same weights), else the default artifact folder."""
    try:
        manifest = read_manifest(candidate)
    except FaceperfError:
        return default_artifacts_dir()
    record = manifest.models.get(model)
    if record is not None and "baseline" in record.variants:
        return Path(candidate)
    return default_artifacts_dir()


def localize_for_suite(
    candidate: Path,
    models: Sequence[str],
    variant: str,
    *,
    reference: Path | None = None,
    budget_s: float = SUITE_BUDGET_S,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """The line a failing accuracy check appends: its models localised within ``budget_s``.

    Names the models with a first failing operation or differing inputs (else says that none
    has one). Over budget, on any error, and for the Core ML variant (whose comparator predicts
    the program many times over), it says how to run the localisation by hand instead.
    """
    hint = "; ".join(hand_command(candidate, m, variant) for m in models)
    if variant not in ONNX_VARIANTS:
        return f"localisation: not run for {variant} in the suite; by hand: {hint}"
    deadline = Deadline.after(budget_s, clock)
    results = []
    try:
        for model in models:
            deadline.check(f"starting {model}")
            reference_dir = reference or suite_reference(candidate, model)
            results.append(
                localize(candidate, model, variant, reference=reference_dir, deadline=deadline)
            )
    except LocalizeBudgetError:
        return f"localisation: over {budget_s:g} s; run it by hand: {hint}"
    except FaceperfError as err:
        return f"localisation: failed ({err}); run it by hand: {hint}"
    found = [r for r in results if r.inputs_differ or r.first_failing is not None]
    return "localisation: " + "; ".join(r.verdict() for r in found or results)
