"""Which candidate tensor is compared with which reference tensor: ``pair_tensors`` pairs
them by graph input, by name, by structure and by input slot (see the package doc), and
``check_pairing`` refuses a candidate whose operations or outputs do not pair up (another
network).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from faceperf.accuracy.localize.graph import GraphView
from faceperf.accuracy.localize.result import LocalizeError

# A candidate matching fewer of the reference's operations than this is another network.
MIN_MATCHED_FRACTION = 0.5


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


def check_pairing(reference: GraphView, pairs: Sequence[TensorPair], model: str) -> tuple[int, int]:
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
