"""`faceperf accuracy localize`: the first ONNX operation where a candidate diverges.

Tiny hand-made graphs pin the pairing and the verdict; the fault catalogue, built for real on the
small models (and one STAR case), shows each fault localised where it was injected.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from faceperf.accuracy.cases import SUBJECT_MODELS
from faceperf.accuracy.faults import CATALOGUE, FAULTS, build_candidate, faulty_models
from faceperf.accuracy.localize.api import localize
from faceperf.accuracy.localize.coreml import coreml_result, localize_coreml, program_ops
from faceperf.accuracy.localize.execution import Deadline
from faceperf.accuracy.localize.result import (
    LocalizeBudgetError,
    LocalizeError,
    snr_json,
    tensor_snr,
)
from faceperf.accuracy.localize.suite import localize_for_suite
from faceperf.accuracy.localize.verdict import compare_graphs
from faceperf.artifacts.coreml_export import load_coreml_spec
from faceperf.artifacts.layout import artifact_path
from faceperf.cli import main
from faceperf.errors import BackendUnavailableError

SMALL_SUBJECTS = ("mtcnn", "retinaface", "mtl")
OFF_MACOS = "Core ML localisation needs macOS"
# What each catalogued fault must localise to (a new fault needs a decision here):
#   inputs      - the pre-processing: inputs_differ, no failing operation
#   noised_conv - the Conv whose weights were noised, or its first consumer
#   quantised   - the first quantised operation (the node that writes the first quantised
#                 Conv's output), or its consumer
#   heads       - the node that now writes the swapped output name
#   nothing     - no operation fails and the inputs agree: an FP32 graph filed as FP16 (a false
#                 precision claim, conformance's catch) and the post-processing faults, which
#                 live after the graph
#   refused     - ONNX Runtime refuses the graph: localize says so, naming its reason
#   rounded     - the Div of an output rounded to a grid (Mul, Round, Div), which now writes it
EXPECTED = {
    "rb_swap": "inputs",
    "unit_range": "inputs",
    "uint8_resize": "inputs",
    "star_224": "inputs",
    "mtl_heads_swapped": "heads",
    "fp16_is_fp32": "nothing",
    "naive_fp16": "refused",
    "weight_noise": "noised_conv",
    "int8_dynamic": "quantised",
    "variances_swapped": "nothing",
    "anchors_512": "nothing",
    "nms_0.6": "nothing",
    # localize compares operations and looks through Identity (an alias): a dropped activation
    # shows at the first operation that reads it (MTL's AU ReduceL2), and not at all when it
    # was the last operation before an output (RetinaFace's softmax on conf): a blind spot the
    # range checks cover (they catch both), noted in docs/accuracy.md.
    "softmax_dropped": "nothing",
    "au_relu_dropped": "dropped",
    # RetinaFace's loc on a 1/8 grid reads 30.7 dB at the Div that writes it (FP32 floor 80);
    # STAR's FP16 landmarks on a 1/256 grid keep 45.8 dB, above the FP16 floor of 45: nothing
    # fails, as no per-face check does (the jitter check is the one meant to see it).
    "boxes_rounded": "rounded",
    "landmarks_rounded": "nothing",
    # A pre-processing fault only faces narrower than 48 px take: the fixture faces localize
    # runs on are all wider, so their inputs and every operation agree.
    "small_faces_nearest": "nothing",
}
SWEEP = [
    pytest.param(fault.name, subject, id=f"{fault.name}-{subject}")
    for fault in CATALOGUE
    for subject in SMALL_SUBJECTS
    if subject in fault.subjects
]


# --- tiny graphs ------------------------------------------------------------------------------


def _model(nodes, initializers=(), output="y", shape=(1, 4)) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in initializers],
    )
    # IR 8: what this ONNX Runtime reads (onnx's helper defaults to a newer one).
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _chain(scale: float, prefix: str = "") -> onnx.ModelProto:
    """x * w -> Relu -> Neg: ``scale`` multiplies the weights."""
    return _model(
        [
            helper.make_node("Mul", ["x", f"{prefix}w"], [f"{prefix}m"], name=f"{prefix}mul"),
            helper.make_node("Relu", [f"{prefix}m"], [f"{prefix}r"], name=f"{prefix}relu"),
            helper.make_node("Neg", [f"{prefix}r"], ["y"], name=f"{prefix}neg"),
        ],
        [(f"{prefix}w", np.array([[1.0, 2.0, 3.0, 4.0]]) * scale)],
    )


FEEDS = [{"x": np.array([[1.0, 0.5, 2.0, 1.5]], np.float32)}]


def _compare(reference, candidate, feeds=FEEDS, floor=40.0):
    return compare_graphs(reference, candidate, feeds, feeds, floor, model="tiny", variant="v")


def test_equal_graphs_have_no_failing_operation():
    result = _compare(_chain(1.0), _chain(1.0))
    assert result.first_failing is None and not result.inputs_differ
    assert all(t.snr_db == math.inf for t in result.tensors)
    assert [op.node for op in result.operations()] == ["mul", "relu", "neg"]


def test_changed_weights_fail_at_the_operation_that_reads_them():
    result = _compare(_chain(1.0), _chain(1.02))
    failing = result.first_failing
    assert failing is not None and failing.node == "mul" and failing.op_type == "Mul"
    assert failing.snr_db == pytest.approx(20 * math.log10(50), abs=0.01)  # a 2 % error
    assert failing.input_snr_db == {"x": math.inf}
    assert [op.node for op in failing.downstream] == ["relu", "neg"]
    assert [op.node for op in result.lowest(2)] == ["mul", "relu"]


def test_renamed_graph_pairs_by_structure():
    result = _compare(_chain(1.0), _chain(1.02, prefix="other_"))
    assert {t.match for t in result.tensors} == {"input", "structure", "name"}
    assert result.first_failing is not None and result.first_failing.node == "other_mul"


def test_all_zero_tensors_on_both_sides_are_equal_not_failing():
    zero = _model(
        [
            helper.make_node("Mul", ["x", "zero"], ["z"], name="zero_out"),
            helper.make_node("Relu", ["z"], ["y"], name="relu"),
        ],
        [("zero", np.zeros((1, 4)))],
    )
    result = _compare(zero, zero)
    assert result.first_failing is None
    assert {t.name: t.snr_db for t in result.tensors} == {
        "x": math.inf,
        "z": math.inf,
        "y": math.inf,
    }
    assert tensor_snr(np.zeros(3), np.zeros(3)) == math.inf
    assert tensor_snr(np.zeros(3), np.array([0.0, 1.0, 0.0])) == -math.inf
    assert tensor_snr(np.ones(3), np.array([1.0, np.inf, 1.0])) == -math.inf


def test_fp16_casts_are_not_operations_and_values_compare_as_float32():
    cast = [
        helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16, name="in_cast"),
        helper.make_node("Cast", ["w"], ["w16"], to=TensorProto.FLOAT16, name="w_cast"),
        helper.make_node("Mul", ["x16", "w16"], ["m16"], name="mul"),
        helper.make_node("Relu", ["m16"], ["r16"], name="relu"),
        helper.make_node("Neg", ["r16"], ["y16"], name="neg"),
        helper.make_node("Cast", ["y16"], ["y"], to=TensorProto.FLOAT, name="out_cast"),
    ]
    fp16 = _model(cast, [("w", [[1.0, 2.0, 3.0, 4.0]])])
    result = _compare(_chain(1.0), fp16)
    assert "Cast" not in {op.op_type for op in result.operations()}
    # The output is paired through its Cast (by name "y"), though Neg writes "y16".
    assert {t.name: t.reference for t in result.tensors}["y16"] == "y"
    assert result.first_failing is None


def test_a_node_only_in_the_candidate_at_the_input_means_the_inputs_differ():
    reference = _chain(1.0)
    candidate = _chain(1.0)
    candidate.graph.node[0].input[0] = "flipped"
    candidate.graph.node.insert(0, helper.make_node("Neg", ["x"], ["flipped"]))
    result = _compare(reference, candidate)
    assert result.inputs_differ and result.first_failing is None
    assert "flipped" in result.inputs_note and "unnamed Neg" in result.inputs_note


def test_a_differing_graph_input_means_the_inputs_differ():
    other = [{"x": FEEDS[0]["x"] * 1.1}]
    result = compare_graphs(_chain(1.0), _chain(1.0), FEEDS, other, 40.0)
    assert result.inputs_differ and result.first_failing is None
    assert result.inputs_note.startswith("graph input x at 20.")


def test_intermediates_below_the_floor_do_not_fail_while_the_outputs_hold():
    # FP16 rounding noise in deep features averages out in a pooling head: the intermediate is
    # below the outputs' floor, the output is not, and nothing is blamed.
    def pooled(noise):
        return _model(
            [
                helper.make_node("Add", ["x", "n"], ["a"], name="add"),
                helper.make_node("ReduceMean", ["a"], ["y"], name="mean", keepdims=0),
            ],
            [("n", noise)],
        )

    result = _compare(pooled([[0.0, 0.0, 0.0, 0.0]]), pooled([[0.1, -0.1, 0.1, -0.1]]))
    snr = {t.name: t.snr_db for t in result.tensors}
    assert snr["a"] < 40.0 <= snr["y"]
    assert result.first_failing is None and not result.failing_outputs


def test_a_flipped_mask_is_judged_at_its_float_consumer():
    def masked(threshold):
        return _model(
            [
                helper.make_node("Greater", ["x", "t"], ["mask"], name="greater"),
                helper.make_node("Where", ["mask", "x", "zero"], ["y"], name="where"),
            ],
            [("t", [[threshold]]), ("zero", [[0.0]])],
        )

    result = _compare(masked(1.2), masked(0.9))  # x[0] = 1.0 passes the candidate's mask only
    assert result.first_failing is not None and result.first_failing.node == "where"
    assert [op.node for op in result.lowest()] == ["where"]  # the mask itself is not ranked
    assert {t.name: t.discrete for t in result.tensors}["mask"]


def test_outputs_are_judged_through_the_suites_view():
    # The candidate errs on the last element only; a view keeping the first two hides it from
    # the output, as the suite's RetinaFace anchor sample hides weak anchors.
    candidate = _chain(1.0)
    candidate.graph.initializer[0].CopyFrom(
        numpy_helper.from_array(np.array([[1.0, 2.0, 3.0, 4.4]], np.float32), "w")
    )
    whole = _compare(_chain(1.0), candidate)
    viewed = compare_graphs(
        _chain(1.0), candidate, FEEDS, FEEDS, 40.0, output_view=lambda _: lambda v: v[:, :2]
    )
    assert whole.first_failing is not None and whole.first_failing.node == "mul"
    assert viewed.first_failing is None and not viewed.failing_outputs
    outputs = {t.name: t for t in viewed.tensors}
    assert outputs["y"].snr_db == math.inf and outputs["y"].note.startswith("judged as")
    assert outputs["m"].snr_db < 40.0  # intermediates stay whole


def test_another_architecture_cannot_be_matched():
    other = _model(
        [
            helper.make_node("Sigmoid", ["x"], ["s"], name="sigmoid"),
            helper.make_node("Exp", ["s"], ["y"], name="exp"),
        ]
    )
    with pytest.raises(LocalizeError, match="cannot be matched to the reference"):
        _compare(_chain(1.0), other)


def test_json_has_no_infinity_literals():
    document = _compare(_chain(1.0), _chain(1.02)).to_json()
    text = json.dumps(document, allow_nan=False)
    assert json.loads(text)["tensors"][0]["snr_db"] == "inf"
    assert snr_json(-math.inf) == "-inf" and snr_json(None) is None and snr_json(3.0) == 3.0


def test_a_spent_deadline_stops_the_run():
    ticks = iter([0.0, 100.0])
    deadline = Deadline.after(30.0, clock=lambda: next(ticks))
    with pytest.raises(LocalizeBudgetError, match="time budget"):
        compare_graphs(_chain(1.0), _chain(1.0), FEEDS, FEEDS, 40.0, deadline=deadline)


def test_small_chunks_give_the_same_result():
    whole = _compare(_chain(1.0), _chain(1.02))
    chunked = compare_graphs(_chain(1.0), _chain(1.02), FEEDS, FEEDS, 40.0, max_bytes=1)
    assert [t.snr_db for t in chunked.tensors] == [t.snr_db for t in whole.tensors]


# --- the fault catalogue ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def candidates(artifacts_dir, tmp_path_factory):
    """Faulty candidate folders, built once per (fault, subject)."""
    built = {}

    def get(fault: str, subject: str) -> Path:
        if (fault, subject) not in built:
            work = tmp_path_factory.mktemp(f"{fault}-{subject}")
            built[fault, subject] = build_candidate(FAULTS[fault], subject, artifacts_dir, work)
        return built[fault, subject]

    return get


def test_every_catalogued_fault_has_an_expected_localisation():
    assert set(EXPECTED) == set(FAULTS)


def _expect(kind: str, result, source: onnx.GraphProto, candidate: onnx.GraphProto) -> None:
    if kind == "inputs":
        assert result.inputs_differ and result.first_failing is None, result.verdict()
        return
    if kind == "nothing":
        assert not result.inputs_differ and result.first_failing is None, result.verdict()
        return
    failing = result.first_failing
    assert failing is not None and not result.inputs_differ, result.verdict()
    if kind == "noised_conv":
        convs = [n for n in source.node if n.op_type == "Conv"]
        noised = convs[len(convs) // 2]
        assert failing.node in {noised.name, *_consumers(candidate, noised.output[0])}
    elif kind == "quantised":
        first = next(n for n in candidate.node if n.op_type in ("ConvInteger", "MatMulInteger"))
        original = next(n for n in source.node if n.name == first.name.removesuffix("_quant"))
        output = original.output[0]
        assert failing.tensor == output or failing.node in _consumers(candidate, output)
    elif kind == "heads":
        producer = {o: n.name for n in source.node for o in n.output}
        swapped = {"emotion": "au", "au": "emotion"}
        assert failing.tensor in swapped
        assert failing.node == producer[swapped[failing.tensor]]
    elif kind == "dropped":
        # The dropped activation became an Identity under its own name; the first operation
        # reading its output is where the outputs part.
        kinds = {n.name: n.op_type for n in source.node}
        dropped = [n for n in candidate.node if n.op_type == "Identity" != kinds.get(n.name)]
        readers = set().union(*(_consumers(candidate, n.output[0]) for n in dropped))
        assert dropped and failing.node in readers, (failing.node, readers)
    elif kind == "rounded":
        writer = next(n for n in candidate.node if failing.tensor in n.output)
        assert writer.op_type == "Div" and failing.tensor in {o.name for o in candidate.output}
    else:
        pytest.fail(f"no check for the expectation {kind!r}")


def _consumers(graph: onnx.GraphProto, tensor: str) -> set[str]:
    return {n.name for n in graph.node if tensor in n.input}


@pytest.mark.parametrize(("fault", "subject"), SWEEP)
def test_fault_localises_where_it_was_injected(fault, subject, candidates, artifacts_dir):
    candidate = candidates(fault, subject)
    for model in faulty_models(FAULTS[fault], subject):
        run = functools.partial(
            localize,
            candidate.directory,
            model,
            candidate.variant,
            reference=artifacts_dir,
            candidate_context=FAULTS[fault].patch,
            cases=1,  # where a fault sits does not depend on the face: one keeps the sweep quick
        )
        if EXPECTED[fault] == "refused":
            with pytest.raises(LocalizeError, match=r"ONNX Runtime cannot run .*Type Error"):
                run()
            continue
        result = run()
        source = onnx.load(artifact_path(artifacts_dir, model, FAULTS[fault].variant)).graph
        edited = onnx.load(artifact_path(candidate.directory, model, candidate.variant)).graph
        _expect(EXPECTED[fault], result, source, edited)


def test_star_exported_at_224_is_an_input_fault(candidates, artifacts_dir):
    candidate = candidates("star_224", "star")
    result = localize(candidate.directory, "star", reference=artifacts_dir, cases=1)
    assert result.inputs_differ and result.first_failing is None
    # Fed a 224 crop, the candidate's own Resize stands for the reference's 256 input.
    assert result.inputs_note.startswith("fault_resized, computed in front of the network")


@pytest.mark.parametrize("variant", ["optimized", "optimized_fp16"])
@pytest.mark.parametrize("model", ["retinaface", "mtl", *SUBJECT_MODELS["mtcnn"]])
def test_honest_candidate_has_no_failing_operation(model, variant, artifacts_dir):
    result = localize(artifacts_dir, model, variant, reference=artifacts_dir)
    assert not result.inputs_differ and result.first_failing is None, result.verdict()
    assert result.matched_operations >= 0.9 * result.reference_operations


def test_honest_star_fp16_has_no_failing_operation(artifacts_dir):
    result = localize(artifacts_dir, "star", "optimized_fp16", reference=artifacts_dir)
    assert not result.inputs_differ and result.first_failing is None, result.verdict()
    assert len(result.lowest(5)) == 5


# --- bad input --------------------------------------------------------------------------------


def test_another_architecture_filed_as_the_model_is_refused(artifacts_dir, tmp_path):
    shutil.copyfile(artifacts_dir / "manifest.json", tmp_path / "manifest.json")
    (tmp_path / "star").mkdir()
    shutil.copyfile(
        artifact_path(artifacts_dir, "mtl", "optimized"), tmp_path / "star" / "optimized.onnx"
    )
    with pytest.raises(LocalizeError, match=r"star cannot be matched to the reference") as raised:
        localize(tmp_path, "star", reference=artifacts_dir, cases=1)
    assert "\n" not in str(raised.value)


def test_a_model_missing_from_the_candidate_is_refused(candidates, artifacts_dir):
    candidate = candidates("rb_swap", "mtcnn")  # holds the MTCNN nets only
    with pytest.raises(LocalizeError, match=r"has no mtl$"):
        localize(candidate.directory, "mtl", reference=artifacts_dir)


def test_an_unknown_model_is_refused(artifacts_dir):
    with pytest.raises(LocalizeError, match="unknown model 'resnet'"):
        localize(artifacts_dir, "resnet")


# --- the accuracy suite's line ----------------------------------------------------------------


def test_suite_line_names_the_failing_net_only(candidates, artifacts_dir):
    candidate = candidates("weight_noise", "mtcnn")
    line = localize_for_suite(
        candidate.directory, SUBJECT_MODELS["mtcnn"], "optimized", reference=artifacts_dir
    )
    assert line.startswith("localisation: mtcnn_rnet optimized: first failing operation /conv2/")
    assert "mtcnn_pnet" not in line and "mtcnn_onet" not in line and "\n" not in line


def test_suite_line_over_budget_says_how_to_run_it_by_hand(artifacts_dir):
    ticks = iter([0.0, 10.0])  # then 100 s: the first net runs out in its first case
    line = localize_for_suite(
        artifacts_dir, ["mtcnn_rnet", "mtcnn_onet"], "optimized", clock=lambda: next(ticks, 100.0)
    )
    assert line.startswith("localisation: over 30 s; run it by hand: ")
    assert f"faceperf accuracy localize --candidate {artifacts_dir} --model mtcnn_onet" in line


def test_suite_line_on_an_error_says_how_to_run_it_by_hand(tmp_path):
    line = localize_for_suite(tmp_path, ["mtl"], "optimized_fp16")
    assert line.startswith("localisation: failed (")
    assert line.endswith(f"--candidate {tmp_path} --model mtl --variant optimized_fp16")


# --- the CLI ----------------------------------------------------------------------------------


def _cli(*arguments: str | Path) -> int:
    return main(["accuracy", "localize", *map(str, arguments)])


def test_cli_json_parses_and_has_the_keys(artifacts_dir, capsys):
    code = _cli(
        "--candidate",
        artifacts_dir,
        "--model",
        "mtcnn_onet",
        "--variant",
        "optimized_fp16",
        "--reference",
        artifacts_dir,
        "--json",
    )
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"model", "variant", "first_failing", "inputs_differ", "tensors"}
    assert document["model"] == "mtcnn_onet" and document["first_failing"] is None
    assert {"name", "node", "op_type", "snr_db"} <= set(document["tensors"][0])


def test_cli_text_names_the_failing_operation(candidates, artifacts_dir, capsys):
    candidate = candidates("weight_noise", "mtcnn")
    code = _cli(
        "--candidate", candidate.directory, "--model", "mtcnn_rnet", "--reference", artifacts_dir
    )
    assert code == 0  # a diagnostic: a failing operation is not a failing command
    text = capsys.readouterr().out
    assert "first failing operation /conv2/Conv (Conv)" in text
    assert "lowest SNR operations:" in text


def test_cli_unknown_model_is_one_line_and_exit_2(artifacts_dir, capsys):
    code = _cli("--candidate", artifacts_dir, "--model", "resnet")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "unknown model 'resnet'" in err and "\n" not in err


def test_cli_unknown_variant_is_a_usage_error(artifacts_dir, capsys):
    with pytest.raises(SystemExit) as exited:
        _cli("--candidate", artifacts_dir, "--model", "star", "--variant", "fp8")
    assert exited.value.code == 2
    assert "unknown variant 'fp8'; expected one of: baseline" in capsys.readouterr().err


def test_cli_missing_folder_is_one_line_and_exit_2(tmp_path, capsys):
    code = _cli("--candidate", tmp_path / "none", "--model", "mtl")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no manifest" in err and "\n" not in err


# --- Core ML ----------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML localisation runs on macOS")
def test_cli_coreml_off_macos_is_one_line_and_exit_2(artifacts_dir, capsys):
    code = _cli("--candidate", artifacts_dir, "--model", "mtcnn_rnet", "--variant", "coreml")
    err = capsys.readouterr().err.strip()
    assert code == 2 and OFF_MACOS in err and "\n" not in err
    with pytest.raises(BackendUnavailableError, match=OFF_MACOS):
        localize_coreml(artifacts_dir, "mtcnn_rnet")


@pytest.mark.coreml
@pytest.mark.skipif(sys.platform != "darwin", reason=OFF_MACOS)
def test_coreml_program_on_its_own_cpu_has_no_failing_operation(artifacts_dir):
    result = localize_coreml(artifacts_dir, "mtcnn_rnet", compute_units="CPU_ONLY", cases=1)
    assert result.first_failing is None and not result.inputs_differ, result.verdict()


def test_coreml_result_reads_the_program_of_a_real_package(artifacts_dir):
    spec = load_coreml_spec(artifact_path(artifacts_dir, "mtcnn_rnet", "coreml"))
    ops = program_ops(spec)
    compute = [op for op in ops if op.op_type not in ("const", "cast")]
    first, second = compute[0], compute[1]
    assert first.op_type == "conv" and "image" in first.inputs
    recorded = {first.outputs[0]: 30.0, second.outputs[0]: 29.0}
    result = coreml_result(
        "mtcnn_rnet",
        ops,
        [o.name for o in spec.description.output],
        [second.outputs[0], first.outputs[0]],
        recorded,
        40.0,
        reference_variant="coreml on CPU_ONLY",
        cases=1,
    )
    assert result.first_failing is not None and result.first_failing.node == first.name
    assert result.first_failing.downstream[0].node == second.name
