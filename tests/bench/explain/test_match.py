"""Pairing the nodes of two runs: renamed, inserted and removed nodes on small graphs profiled
for real; the corner cases on fabricated profiles."""

from __future__ import annotations

import pytest

from faceperf.bench.explain.match import MatchedBy, generated_name, match_nodes
from faceperf.bench.explain.profile import Calls, ProfileTarget, profile_interleaved

LAYERS = [("t1", "Tanh"), ("s1", "Softplus"), ("a1", "Abs"), ("t2", "Tanh")]


@pytest.fixture
def profiled(fab, tmp_path):
    """Profile the reference chain and a candidate chain together; their matching."""

    def run(candidate_layers):
        ref = fab.chain(tmp_path / "reference.onnx", LAYERS)
        cand = fab.chain(tmp_path / "candidate.onnx", candidate_layers)
        targets = [ProfileTarget(p, fab.feeds(), "chain") for p in (ref, cand)]
        reference, candidate = profile_interleaved(targets, calls=Calls.exactly(2))
        return match_nodes(reference, candidate)

    return run


def _names(nodes) -> list[str]:
    return [n.name for n in nodes]


def test_the_same_graph_pairs_every_node_by_name(profiled):
    matching = profiled(LAYERS)
    assert [(p.reference.name, p.candidate.name) for p in matching.pairs] == [
        ("t1", "t1"),
        ("s1", "s1"),
        ("a1", "a1"),
        ("t2", "t2"),
        ("head", "head"),
    ]
    assert {p.matched_by for p in matching.pairs} == {MatchedBy.NAME}
    assert matching.new == () and matching.gone == ()


def test_a_renamed_node_pairs_by_its_shapes_in_its_place(profiled):
    matching = profiled([("t1", "Tanh"), ("soft", "Softplus"), ("a1", "Abs"), ("t2", "Tanh")])
    assert matching.new == () and matching.gone == ()
    renamed = [p for p in matching.pairs if p.matched_by is MatchedBy.SHAPES]
    assert [(p.reference.name, p.candidate.name) for p in renamed] == [("s1", "soft")]
    assert matching.counterpart()["soft"] == "s1"


def test_inserted_nodes_are_new(profiled):
    matching = profiled([*LAYERS[:2], ("x1", "Abs"), ("x2", "Abs"), *LAYERS[2:]])
    assert _names(matching.new) == ["x1", "x2"]
    assert matching.gone == ()
    assert len(matching.pairs) == 5


def test_removed_nodes_are_gone(profiled):
    matching = profiled([LAYERS[0], LAYERS[1], LAYERS[3]])
    assert _names(matching.gone) == ["a1"]
    assert matching.new == ()


def test_a_generated_name_reused_for_another_node_is_not_paired_by_name(fab):
    # ORT counts the names it makes up: in the candidate, "ReorderOutput" is a later node.
    reference = fab.profile(
        [
            fab.node("conv1", "Conv", [1.0], shape=(1, 32, 46, 46)),
            fab.node("ReorderOutput", "ReorderOutput", [0.1], shape=(1, 32, 46, 46)),
            fab.node("conv2", "Conv", [1.0], shape=(1, 64, 8, 8)),
            fab.node("ReorderOutput_token_1", "ReorderOutput", [0.1], shape=(1, 64, 8, 8)),
        ]
    )
    candidate = fab.profile(
        [
            fab.node("conv1", "Conv", [1.0], shape=(1, 32, 46, 46)),
            fab.node("ReorderOutput_token_9", "ReorderOutput", [0.1], shape=(1, 32, 46, 46)),
            fab.node("conv2", "Conv", [1.0], shape=(1, 64, 8, 8)),
            fab.node("ReorderOutput", "ReorderOutput", [0.1], shape=(1, 64, 8, 8)),
        ]
    )
    matching = match_nodes(reference, candidate)
    assert matching.counterpart() == {
        "conv1": "conv1",
        "ReorderOutput_token_9": "ReorderOutput",
        "conv2": "conv2",
        "ReorderOutput": "ReorderOutput_token_1",
    }


def test_repeated_blocks_pair_in_order(fab):
    def block(prefix: str) -> list:
        return [fab.node(f"{prefix}.conv", "Conv", [1.0]), fab.node(f"{prefix}.relu", "Relu", [1])]

    reference = fab.profile([*block("a"), *block("b"), *block("c")])
    candidate = fab.profile([*block("x"), *block("y"), *block("z")])
    matching = match_nodes(reference, candidate)
    assert [(p.reference.name[0], p.candidate.name[0]) for p in matching.pairs] == [
        ("a", "x"),
        ("a", "x"),
        ("b", "y"),
        ("b", "y"),
        ("c", "z"),
        ("c", "z"),
    ]


def test_a_node_at_another_input_size_pairs_by_name_last(fab):
    reference = fab.profile([fab.node("conv", "Conv", [1.0], shape=(1, 8, 64, 64))])
    candidate = fab.profile([fab.node("conv", "Conv", [0.5], shape=(1, 8, 32, 32))])
    (pair,) = match_nodes(reference, candidate).pairs
    assert pair.matched_by is MatchedBy.NAME_SHAPES_CHANGED


def test_another_operator_under_the_same_name_is_gone_and_new(fab):
    # ORT fused the candidate's Conv with its Relu: a different kernel, under the Conv's name.
    reference = fab.profile([fab.node("conv", "Conv", [1.0]), fab.node("relu", "Relu", [0.2])])
    candidate = fab.profile([fab.node("conv", "FusedConv", [1.1])])
    matching = match_nodes(reference, candidate)
    assert matching.pairs == ()
    assert _names(matching.gone) == ["conv", "relu"]
    assert [n.op_type for n in matching.new] == ["FusedConv"]


def test_a_generated_name_with_other_shapes_is_gone_and_new_not_paired(fab):
    reference = fab.profile([fab.node("ReorderOutput_token_3", "ReorderOutput", [0.1])])
    candidate = fab.profile(
        [fab.node("ReorderOutput_token_3", "ReorderOutput", [0.2], shape=(1, 98, 64, 64))]
    )
    matching = match_nodes(reference, candidate)
    assert matching.pairs == ()
    assert len(matching.gone) == len(matching.new) == 1


@pytest.mark.parametrize(
    ("name", "op_type", "generated"),
    [
        ("ReorderOutput", "ReorderOutput", True),
        ("ReorderOutput_token_19", "ReorderOutput", True),
        ("Conv_177", "Conv", True),
        ("/hgs.0/conv/Conv", "Conv", False),
        ("conv1", "Conv", False),
    ],
)
def test_generated_names_are_told_from_given_ones(name, op_type, generated):
    assert generated_name(name, op_type) is generated


def test_generated_names_shuffled_between_sessions_pair_by_place(fab):
    # Two sessions of one file: ORT numbered its Reorder nodes in another order.
    def run(first: str, second: str):
        return fab.profile(
            [
                fab.node("a", "Conv", [1.0], shape=(1, 256, 64, 64)),
                fab.node(first, "ReorderOutput", [0.1], shape=(1, 256, 64, 64)),
                fab.node("b", "Conv", [1.0], shape=(1, 256, 64, 64)),
                fab.node(second, "ReorderOutput", [0.1], shape=(1, 256, 64, 64)),
            ]
        )

    matching = match_nodes(run("R_token_1", "R_token_2"), run("R_token_2", "R_token_1"))
    assert matching.new == () and matching.gone == ()
    assert [p.reference.position for p in matching.pairs] == [0, 1, 2, 3]
    assert [p.candidate.position for p in matching.pairs] == [0, 1, 2, 3]
