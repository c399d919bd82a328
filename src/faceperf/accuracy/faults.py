"""The fault catalogue: real conversion and pipeline faults, built on purpose, that the accuracy
suite must catch.

Each fault makes a faulty candidate for real: graph faults edit the exported ONNX graph of the
``optimized`` (or ``optimized_fp16``) variant and write it, with a manifest that agrees with the
edited file, into a candidate folder, as a careless reconversion would; pipeline faults patch
the pre-processing code path while the candidate runs. Each fault also names the checks that
must catch it (``Catch``). ``evaluate_fault`` runs the suite's own checks (conformance,
accuracy against the references and output ranges: the functions ``faceperf accuracy check``
and accuracy_tests use) on it: the fault is caught (``pass``) only when every check it names
fails for the reason it names; a fault that cannot even be built or run is an error, not caught
(``fail``). A fault whose catch needs a trained network (``Fault.needs_trained``) and that the
checks do not catch on references built from a surrogate of it is ``skipped``, saying why and
what was measured: the surrogate cannot show it, which proves nothing either way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
import onnx
from onnx import helper, numpy_helper

from faceperf.accuracy.cases import SUBJECT_MODELS, Candidate
from faceperf.accuracy.compare import COSTLY_CHECKS, Measurement, worst_by_metric
from faceperf.accuracy.references import ReferenceSet
from faceperf.accuracy.session import judge_conformance, judge_subject
from faceperf.accuracy.tolerances import Tolerances
from faceperf.artifacts.conformance import Finding
from faceperf.artifacts.layout import artifact_path
from faceperf.artifacts.manifest import Manifest, read_manifest, write_manifest
from faceperf.artifacts.onnx_export import rerecord_onnx
from faceperf.models import inputs
from faceperf.models.registry import default_registry
from faceperf.pipeline import mtcnn_detector, retinaface_detector
from faceperf.verdicts import Verdict

# What the pre-processing of each model maps a pixel value p (0..255) of channel c to:
# scale[c] * p + offset[c]. The [0, 1] fault feeds p / 255 instead.
_MTL_STD = np.array(inputs.IMAGENET_STD_RGB, np.float64)
_MTL_MEAN = np.array(inputs.IMAGENET_MEAN_RGB, np.float64)
_PIXEL_MAP: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "retinaface": (np.ones(3), -np.array(inputs.RETINAFACE_MEAN_BGR, np.float64)),
    "star": (np.full(3, 2.0 / 255.0), np.full(3, -1.0)),
    "mtl": (1.0 / (255.0 * _MTL_STD), -_MTL_MEAN / _MTL_STD),
    "mtcnn_pnet": (np.full(3, 0.0078125), np.full(3, -127.5 * 0.0078125)),
}
_PIXEL_MAP["mtcnn_rnet"] = _PIXEL_MAP["mtcnn_onet"] = _PIXEL_MAP["mtcnn_pnet"]
NOISE_SCALE = 0.01  # Gaussian noise of 1 % of the layer's weight standard deviation
NOISE_SEED = 0
EVERY_SUBJECT = "*"  # a Fault.catches key: what must catch the fault on every subject
CONFORMANCE, METRIC, REFUSAL = "conformance", "metric", "refusal"


@dataclass(frozen=True)
class Catch:
    """One check that must catch a fault, and the reason it must give.

    ``check`` is ``conformance`` (``name``: the finding's check, ``precision``, ``shape`` ...),
    ``metric`` (``name``: a measurement's metric; ``snr_db`` stands for every
    ``snr_db[<output>]``, ``range`` for every ``range[<output>]``) or ``refusal`` (the
    candidate's artifacts do not load or run). ``says`` is a fragment the finding's or the
    refusal's message must hold.
    """

    check: str
    name: str = ""
    says: str = ""

    def fired(self, result: FaultResult) -> bool:
        """True when this check failed, for its reason, in ``result``."""
        if self.check == CONFORMANCE:
            return any(f.check == self.name and self.says in f.message for f in result.findings)
        if self.check == METRIC:
            return any(_is_metric(m.metric, self.name) for m in result.failures)
        if self.check == REFUSAL:
            return result.refused is not None and self.says in result.refused
        raise ValueError(
            f"unknown check {self.check!r}; expected {CONFORMANCE}, {METRIC} or {REFUSAL}"
        )

    def __str__(self) -> str:
        says = f" {self.says!r}" if self.says else ""
        return f"{self.check} {self.name}{says}".replace("  ", " ")


def conformance(check: str, says: str = "") -> Catch:
    return Catch(CONFORMANCE, check, says)


def metric(name: str) -> Catch:
    return Catch(METRIC, name)


def refusal(says: str) -> Catch:
    return Catch(REFUSAL, says=says)


def _is_metric(measured: str, name: str) -> bool:
    return measured == name or measured.startswith(f"{name}[")


@dataclass(frozen=True)
class Fault:
    """One fault the suite must catch.

    ``edit`` turns one model's ONNX graph into its faulty version (graph faults);
    ``patch`` is a context in which the pipeline's code path is faulty (pipeline faults).
    ``catches`` names, per subject (``EVERY_SUBJECT``: all of them), the checks that must all
    fail for the fault to count as caught. ``needs_trained`` names the models whose surrogate
    cannot show the fault (``untrained_reason`` says why).
    """

    name: str
    description: str
    subjects: tuple[str, ...]
    variant: str = "optimized"
    edit: Callable[[onnx.ModelProto, str], onnx.ModelProto] | None = None
    patch: Callable[[], contextlib.AbstractContextManager] | None = None
    # The variant the edited file is filed as, when it is not the one it was made from.
    filed_as: str | None = None
    catches: Mapping[str, tuple[Catch, ...]] = field(default_factory=dict)
    # Models whose trained weights the catch relies on, and why: with a surrogate of one of
    # them in the references, a fault its checks do not catch is reported skipped, with that
    # reason and what was measured, instead of not caught.
    needs_trained: tuple[str, ...] = ()
    untrained_reason: str = ""

    def __post_init__(self) -> None:
        # A fault with nothing to catch it would count as caught by nothing failing.
        unguarded = [s for s in self.subjects if not self.expected(s)]
        if unguarded:
            raise ValueError(f"fault {self.name!r} names no check for {', '.join(unguarded)}")

    def expected(self, subject: str) -> tuple[Catch, ...]:
        """The checks that must catch this fault on ``subject``."""
        return (*self.catches.get(EVERY_SUBJECT, ()), *self.catches.get(subject, ()))


@dataclass(frozen=True)
class FaultResult:
    """What the suite said about one fault on one subject."""

    fault: str
    subject: str
    variant: str
    expected: tuple[Catch, ...]
    findings: tuple[Finding, ...] = ()  # conformance
    failures: tuple[Measurement, ...] = ()  # accuracy measurements beyond their limits
    refused: str | None = None  # the candidate's artifacts did not load or run: the reason
    error: str | None = None  # the fault could not be built or evaluated: it proves nothing
    # Why these weights cannot show the fault (Fault.needs_trained), when they are surrogates.
    untrained: str | None = None
    measured: tuple[Measurement, ...] = ()  # the expected metrics' worst values, caught or not

    @property
    def verdict(self) -> Verdict:
        """``pass`` (caught) when every expected check fired; ``skipped`` when it did not but
        the weights are surrogates that cannot show the fault; else ``fail`` (not caught)."""
        if self.error is None and not self.missed():
            return Verdict.PASS
        if self.error is None and self.untrained is not None:
            return Verdict.SKIPPED
        return Verdict.FAIL

    @property
    def caught(self) -> bool:
        return self.verdict is Verdict.PASS

    def missed(self) -> list[Catch]:
        """The expected checks that did not fire."""
        return [catch for catch in self.expected if not catch.fired(self)]

    def caught_by(self) -> str:
        """The checks that failed, worst value first for each metric."""
        parts = [f"conformance {f.check}: {f.message}" for f in self.findings]
        if self.refused:
            parts.append(f"run refused: {self.refused}")
        parts += [
            f"{m.metric} {m.value:.4g}{m.limit.unit} (limit {m.limit.describe()}, {m.case})"
            for m in worst_by_metric(list(self.failures))
        ]
        return "; ".join(parts) if parts else "no check failed"

    def describe(self) -> str:
        """One line: what caught it, or what was expected and what happened instead."""
        if self.error is not None:
            return f"error: {self.error}"
        if self.caught:
            return self.caught_by()
        expected = ", ".join(str(catch) for catch in self.missed())
        if self.verdict is Verdict.SKIPPED:
            return f"{self.untrained}; measured {self.measured_text()}; {self.caught_by()}"
        return f"expected {expected} to fail; {self.caught_by()}"

    def measured_text(self) -> str:
        """The expected metrics' worst values against their limits."""
        return "; ".join(
            f"{m.metric} {m.value:.4g}{m.limit.unit} ({m.case}, limit {m.limit.describe()})"
            for m in self.measured
        )


# --- graph edits ------------------------------------------------------------------------------


def _input_name(model: onnx.ModelProto) -> str:
    return model.graph.input[0].name


def _feed_through(model: onnx.ModelProto, nodes: list[onnx.NodeProto], tensor: str) -> None:
    """Make every consumer of the graph input read ``tensor`` instead, computed by ``nodes``."""
    source = _input_name(model)
    for node in model.graph.node:
        node.input[:] = [tensor if name == source else name for name in node.input]
    for node in reversed(nodes):
        model.graph.node.insert(0, node)


def _channel_constant(model: onnx.ModelProto, name: str, values: np.ndarray) -> None:
    dtype = _input_dtype(model)
    model.graph.initializer.append(
        numpy_helper.from_array(values.reshape(1, -1, 1, 1).astype(dtype), name)
    )


def _input_dtype(model: onnx.ModelProto) -> np.dtype:
    elem = model.graph.input[0].type.tensor_type.elem_type
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem))


def swap_red_blue(model: onnx.ModelProto, _: str) -> onnx.ModelProto:
    """Reverse the channel order at the input: the red/blue swap of a wrong colour conversion."""
    model.graph.initializer.append(
        numpy_helper.from_array(np.array([2, 1, 0], np.int64), "fault_rb")
    )
    node = helper.make_node("Gather", [_input_name(model), "fault_rb"], ["fault_bgr"], axis=1)
    _feed_through(model, [node], "fault_bgr")
    return model


def unit_range(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """The model sees pixels scaled to [0, 1] instead of its own normalisation.

    The input x = scale·p + offset is mapped back to p / 255 inside the graph, which is what
    the network receives when the pipeline feeds p / 255.
    """
    scale, offset = _PIXEL_MAP[name]
    _channel_constant(model, "fault_scale", 1.0 / (255.0 * scale))
    _channel_constant(model, "fault_shift", -offset / (255.0 * scale))
    nodes = [
        helper.make_node("Mul", [_input_name(model), "fault_scale"], ["fault_scaled"]),
        helper.make_node("Add", ["fault_scaled", "fault_shift"], ["fault_unit"]),
    ]
    _feed_through(model, nodes, "fault_unit")
    return model


def smaller_input(size: int) -> Callable[[onnx.ModelProto, str], onnx.ModelProto]:
    """The graph takes ``size`` x ``size`` crops and resizes them to the network's own size:
    what "exported at 224" gives for a network (STAR) whose layers only work at 256."""

    def edit(model: onnx.ModelProto, _: str) -> onnx.ModelProto:
        graph_input = model.graph.input[0]
        dims = graph_input.type.tensor_type.shape.dim
        native = [d.dim_value for d in dims]
        dims[2].dim_value = dims[3].dim_value = size
        model.graph.initializer.append(
            numpy_helper.from_array(np.array(native, np.int64), "fault_native_size")
        )
        node = helper.make_node(
            "Resize",
            [graph_input.name, "", "", "fault_native_size"],
            ["fault_resized"],
            mode="linear",
        )
        _feed_through(model, [node], "fault_resized")
        return model

    return edit


def swap_outputs(first: str, second: str) -> Callable[[onnx.ModelProto, str], onnx.ModelProto]:
    """Two same-shaped output heads exchange names, as a converter mapping heads by position."""

    def edit(model: onnx.ModelProto, _: str) -> onnx.ModelProto:
        rename = {first: second, second: first}
        for node in model.graph.node:
            node.output[:] = [rename.get(n, n) for n in node.output]
            node.input[:] = [rename.get(n, n) for n in node.input]
        return model

    return edit


def middle_conv_noise(model: onnx.ModelProto, _: str) -> onnx.ModelProto:
    """Gaussian noise of 1 % of its weights' standard deviation on the middle Conv layer."""
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    weight_name = convs[len(convs) // 2].input[1]
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name == weight_name:
            weight = numpy_helper.to_array(tensor)
            rng = np.random.default_rng(NOISE_SEED)
            noise = rng.normal(0.0, NOISE_SCALE * float(weight.std()), weight.shape)
            noisy = (weight + noise).astype(weight.dtype)
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(noisy, weight_name))
            return model
    raise ValueError(f"conv weight {weight_name!r} is not an initializer")


def drop_final(op_type: str, output: str) -> Callable[[onnx.ModelProto, str], onnx.ModelProto]:
    """The last ``op_type`` node on the way to graph output ``output`` passes its input through
    unchanged: a converter that drops a final activation (mapping it to nothing, or taking it
    for post-processing the application would do)."""

    def edit(model: onnx.ModelProto, _: str) -> onnx.ModelProto:
        nodes = model.graph.node
        feeding = _ancestors(model.graph, output)
        found = [i for i, node in enumerate(nodes) if node.op_type == op_type and i in feeding]
        if not found:
            raise ValueError(f"no {op_type} node feeds output {output!r}")
        # Nodes are stored in topological order: the last one found is the nearest the output.
        last = nodes[found[-1]]
        nodes[found[-1]].CopyFrom(
            helper.make_node("Identity", [last.input[0]], list(last.output), name=last.name)
        )
        return model

    return edit


def _ancestors(graph: onnx.GraphProto, output: str) -> set[int]:
    """Indices of the nodes ``output`` is computed from."""
    producer = {name: i for i, node in enumerate(graph.node) for name in node.output}
    found: set[int] = set()
    pending = [output]
    while pending:
        index = producer.get(pending.pop())
        if index is None or index in found:
            continue
        found.add(index)
        pending.extend(graph.node[index].input)
    return found


def round_output(output: str, steps: int) -> Callable[[onnx.ModelProto, str], onnx.ModelProto]:
    """Graph output ``output`` rounded to a grid of 1/``steps`` (Mul by steps, Round, Div by
    steps): a converter or a hand-written post-processing that stores coordinates in fixed
    point. For STAR's landmarks ([-1, 1] across the 256-px crop) 1/256 is half a crop pixel."""

    def edit(model: onnx.ModelProto, _: str) -> onnx.ModelProto:
        graph = model.graph
        (declared,) = [o for o in graph.output if o.name == output]
        dtype = helper.tensor_dtype_to_np_dtype(declared.type.tensor_type.elem_type)
        graph.initializer.append(numpy_helper.from_array(np.array(steps, dtype), "fault_steps"))
        # The producer now writes an inner name; the rounding writes the output's own.
        for node in graph.node:
            node.output[:] = ["fault_unrounded" if n == output else n for n in node.output]
        graph.node.extend(
            [
                helper.make_node("Mul", ["fault_unrounded", "fault_steps"], ["fault_scaled"]),
                helper.make_node("Round", ["fault_scaled"], ["fault_rounded"]),
                helper.make_node("Div", ["fault_rounded", "fault_steps"], [output]),
            ]
        )
        return model

    return edit


def same_file(model: onnx.ModelProto, _: str) -> onnx.ModelProto:
    """No edit: the FP32 graph is filed as the FP16 variant."""
    return model


def naive_fp16(model: onnx.ModelProto, _: str) -> onnx.ModelProto:
    """FP16 by onnxconverter-common with ``keep_io_types`` and no op kept in FP32, the one-line
    conversion a reconversion reaches for. On MTL it retypes the output of the AU head's
    ``Cast(to=float)`` as float16 and ONNX Runtime refuses to load the graph (a type error)."""
    from onnxconverter_common.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about every value it clamps to FP16 range
        return convert_float_to_float16(model, keep_io_types=True)


# --- pipeline faults --------------------------------------------------------------------------


def _uint8_first(frame: np.ndarray, resize: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return resize(frame).astype(np.float32)


@contextlib.contextmanager
def uint8_resize() -> Iterator[None]:
    """Every face crop and pyramid level is resized (or warped) as uint8, then made float: the
    original application's known fault (its outputs correlated only r=0.70 with the reference)."""
    original_mtl = inputs.mtl_input
    original_retina = inputs.retinaface_input

    def star_input(frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        matrices = np.stack([inputs.star_crop_matrix(b) for b in np.asarray(boxes, np.float64)])
        size = inputs.STAR_SIZE
        crops = [cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR) for m in matrices]
        batch = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) / 255.0 * 2.0 - 1.0
        return np.ascontiguousarray(batch, np.float32), matrices

    def mtl_input(face: np.ndarray) -> np.ndarray:
        size = inputs.MTL_SIZE
        resized = cv2.resize(face, (size, size), interpolation=cv2.INTER_LINEAR)
        return original_mtl(resized)

    def retinaface_input(frame: np.ndarray, size: int | None = None) -> np.ndarray:
        if size is None:
            return original_retina(frame)
        scale = inputs.letterbox_scale(*frame.shape[:2], size)
        h, w = round(frame.shape[0] * scale), round(frame.shape[1] * scale)
        resized = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
        padded = np.empty((size, size, 3), np.uint8)
        padded[...] = np.round(inputs.RETINAFACE_MEAN_BGR).astype(np.uint8)
        padded[:h, :w] = resized
        return original_retina(padded)

    original_mean = mtcnn_detector._normalised_nchw

    def rounded_mean(total: np.ndarray, area: np.ndarray) -> np.ndarray:
        # An area resize of uint8 pixels rounds each mean to an integer before the float math.
        mean = np.rint(total / area[..., None]).astype(total.dtype)
        return original_mean(mean, np.ones_like(area))

    with (
        mock.patch.object(inputs, "star_input", star_input),
        mock.patch.object(inputs, "mtl_input", mtl_input),
        mock.patch.object(inputs, "retinaface_input", retinaface_input),
        mock.patch.object(mtcnn_detector, "_normalised_nchw", rounded_mean),
    ):
        yield


# Faces narrower than this take the tiny-face path of ``small_faces_nearest``: below the narrowest
# fixture face (scene3#3, a 49-px box), so no per-face case reaches it; the 20-px IOD bin does
# (boxes 41-47 px).
SMALL_FACE_PX = 48


@contextlib.contextmanager
def small_faces_nearest() -> Iterator[None]:
    """Faces narrower than ``SMALL_FACE_PX`` are resampled to the network's input with
    nearest-neighbour instead of bilinear interpolation: a tiny-face "fast path" in a port whose
    resize helper defaults to another interpolation (STAR's crop warp, MTL's crop resize). Larger
    faces take the pipeline's own path, so only the face-size bins can see it."""
    original_star, original_mtl = inputs.star_input, inputs.mtl_input

    def star_input(frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        batch, matrices = original_star(frame, boxes)
        size = inputs.STAR_SIZE
        image = frame.astype(np.float32)  # float before the warp, as the pipeline does
        for i, box in enumerate(boxes):
            if min(box[2] - box[0], box[3] - box[1]) < SMALL_FACE_PX:
                crop = cv2.warpAffine(image, matrices[i], (size, size), flags=cv2.INTER_NEAREST)
                batch[i] = crop.transpose(2, 0, 1) / 255.0 * 2.0 - 1.0
        return batch, matrices

    def mtl_input(face: np.ndarray) -> np.ndarray:
        if min(face.shape[:2]) >= SMALL_FACE_PX:
            return original_mtl(face)
        size = inputs.MTL_SIZE
        rgb = face[:, :, ::-1].astype(np.float32)
        resized = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_NEAREST)
        normalised = (resized / 255.0 - inputs.IMAGENET_MEAN_RGB) / inputs.IMAGENET_STD_RGB
        return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)

    with (
        mock.patch.object(inputs, "star_input", star_input),
        mock.patch.object(inputs, "mtl_input", mtl_input),
    ):
        yield


# RetinaFace's decode faults only a trained detector shows: an untrained one finds no faces whose
# boxes could move. The raw tensors stay exact, so only the detection checks can catch them.
WRONG_ANCHOR_SIZE = 512  # the network runs at 640; the anchor config says 512
WRONG_NMS_THRESHOLD = 0.6  # the application's is 0.4
# The rounding faults' grids, in steps per unit of the output: STAR's landmarks span [-1, 1]
# over 256 crop pixels (1/256 = half a pixel); RetinaFace's loc is in units of 0.1 x the
# anchor's size for the centre (1/8: 1.25 % of the anchor) and of 0.2 in log-size (2.5 %).
LANDMARK_STEPS = 256
BOX_STEPS = 8


@contextlib.contextmanager
def swapped_variances() -> Iterator[None]:
    """The box decode uses RetinaFace's prior variances the wrong way round (0.2, 0.1)."""
    first, second = retinaface_detector.VARIANCES
    with mock.patch.object(retinaface_detector, "VARIANCES", (second, first)):
        yield


@contextlib.contextmanager
def anchors_for_wrong_size() -> Iterator[None]:
    """Anchors normalised for a 512-pixel input while the network sees 640: a config whose
    image_size disagrees with the export. Same anchor count, every box scaled and shifted."""
    original = retinaface_detector.prior_boxes

    def prior_boxes(height: int, width: int) -> np.ndarray:
        scale = np.array([width, height, width, height], np.float64) / WRONG_ANCHOR_SIZE
        return (original(height, width) * scale).astype(np.float32)

    with mock.patch.object(retinaface_detector, "prior_boxes", prior_boxes):
        yield


@contextlib.contextmanager
def loose_nms() -> Iterator[None]:
    """Non-maximum suppression at IoU 0.6 instead of the application's 0.4."""
    original = retinaface_detector.nms

    def nms(boxes: np.ndarray, scores: np.ndarray, _threshold: float, **kwargs) -> np.ndarray:
        return original(boxes, scores, WRONG_NMS_THRESHOLD, **kwargs)

    with mock.patch.object(retinaface_detector, "nms", nms):
        yield


# --- the catalogue ----------------------------------------------------------------------------

ALL = tuple(SUBJECT_MODELS)
# Where a fault changes the task's answer its task metric must catch it, where it changes the
# tensors SNR must, where it breaks the contract the conformance check must.
_INPUT_CATCHES = {
    EVERY_SUBJECT: (metric("snr_db"),),
    "retinaface": (metric("agreement"),),
    "star": (metric("nme_pct"),),
    "mtl": (metric("gaze_deg"),),
    "mtcnn": (metric("agreement"),),
}
_SUBTLE_CATCHES = {
    EVERY_SUBJECT: (metric("snr_db"),),
    "star": (metric("nme_mean_pct"),),
    "mtl": (metric("gaze_deg"),),
}
CATALOGUE: tuple[Fault, ...] = (
    Fault(
        "rb_swap",
        "red and blue channels swapped at the input",
        ALL,
        edit=swap_red_blue,
        catches=_INPUT_CATCHES,
    ),
    Fault(
        "unit_range",
        "input scaled to [0, 1] instead of the model's range",
        ALL,
        edit=unit_range,
        catches=_INPUT_CATCHES,
    ),
    Fault(
        "uint8_resize",
        "face crop / pyramid level resized as uint8 before float conversion",
        ALL,
        patch=uint8_resize,
        catches=_SUBTLE_CATCHES,
    ),
    Fault(
        "star_224",
        "STAR exported at 224x224 (a resize to 256 in front of the network)",
        ("star",),
        edit=smaller_input(224),
        catches={
            "star": (
                conformance("shape", "input shape (1, 3, 224, 224)"),
                # the pipeline's 256 crop is refused by the 224 input the manifest declares
                refusal("input 'image' has shape (1, 3, 256, 256), expected (1, 3, 224, 224)"),
            )
        },
    ),
    Fault(
        "mtl_heads_swapped",
        "MTL emotion and AU heads swapped (both 8 wide)",
        ("mtl",),
        edit=swap_outputs("emotion", "au"),
        catches={"mtl": (metric("emotion_agreement"), metric("au_mean_abs"), metric("snr_db[au]"))},
    ),
    Fault(
        "fp16_is_fp32",
        'an "FP16" artifact that is the FP32 graph',
        ALL,
        edit=same_file,
        filed_as="optimized_fp16",
        catches={
            EVERY_SUBJECT: (
                conformance("precision", "claims float16 but only 0% of its weights are FP16"),
            )
        },
    ),
    Fault(
        "naive_fp16",
        "FP16 by onnxconverter-common with keep_io_types, no op kept in FP32",
        ("mtl",),
        edit=naive_fp16,
        filed_as="optimized_fp16",
        catches={"mtl": (refusal("ONNX Runtime cannot load it"),)},
    ),
    Fault(
        "weight_noise",
        "Gaussian noise of 1 % of the weight scale in one middle conv layer",
        ALL,
        edit=middle_conv_noise,
        catches=_SUBTLE_CATCHES,
    ),
    Fault(
        "int8_dynamic",
        "onnxruntime.quantization dynamic INT8 quantisation",
        ALL,
        edit=lambda model, _: _quantize_dynamic(model),
        catches={
            EVERY_SUBJECT: (
                conformance("ops", "integer quantisation ops in a float32 variant"),
                metric("snr_db"),
            )
        },
    ),
    # RetinaFace's decode faults leave its tensors exact: only the detection checks can see them.
    Fault(
        "variances_swapped",
        "RetinaFace box decode with the prior variances swapped (0.2, 0.1)",
        ("retinaface",),
        patch=swapped_variances,
        catches={"retinaface": (metric("agreement"), metric("min_iou"), metric("mean_iou"))},
    ),
    Fault(
        "anchors_512",
        f"RetinaFace anchors normalised for a {WRONG_ANCHOR_SIZE}-pixel input (network at 640)",
        ("retinaface",),
        patch=anchors_for_wrong_size,
        catches={"retinaface": (metric("agreement"), metric("min_iou"))},
    ),
    Fault(
        "nms_0.6",
        f"RetinaFace NMS at IoU {WRONG_NMS_THRESHOLD} instead of 0.4",
        ("retinaface",),
        patch=loose_nms,
        catches={"retinaface": (metric("agreement"), metric("min_iou"))},
    ),
    # A dropped final activation leaves values the network's construction cannot produce: the
    # range check must see it on the candidate's outputs alone, whatever the references say.
    Fault(
        "softmax_dropped",
        "RetinaFace exported without the softmax on conf (its logits read as scores)",
        ("retinaface",),
        edit=drop_final("Softmax", "conf"),
        catches={"retinaface": (metric("range[conf]"), metric("range[scores]"))},
    ),
    Fault(
        "au_relu_dropped",
        "MTL's AU graph layer exported without its final ReLU (AU cosines may turn negative)",
        ("mtl",),
        edit=drop_final("Relu", "au"),
        catches={"mtl": (metric("range[au]"),)},
    ),
    # Outputs stored on a grid: each frame moves by at most half a step, but as the face drifts
    # the answer sticks and then jumps a whole step, which the jitter check sees. STAR's
    # half-pixel grid in its FP16 variant passes every per-face check; RetinaFace's coarser one
    # shows in SNR too (docs/accuracy.md, "Tracking jitter").
    Fault(
        "landmarks_rounded",
        f"STAR's FP16 landmarks rounded to a grid of 1/{LANDMARK_STEPS} (half a crop pixel)",
        ("star",),
        variant="optimized_fp16",
        edit=round_output("landmarks", LANDMARK_STEPS),
        catches={"star": (metric("jitter[landmarks]"),)},
        needs_trained=("star",),
        untrained_reason=(
            "its points move 1.7 px per grey level of sensor noise (its own jitter is 7-12 % of "
            "the eye distance on these clips), so a half-pixel grid cannot change it"
        ),
    ),
    # Broken below a face size the fixtures do not reach: every per-face check passes, the
    # smallest face-size bin fails (docs/accuracy.md, "Face sizes and orientations").
    Fault(
        "small_faces_nearest",
        f"faces narrower than {SMALL_FACE_PX} px resampled nearest-neighbour (a tiny-face path)",
        ("star", "mtl"),
        patch=small_faces_nearest,
        catches={
            "star": (metric("bins[nme_pct]"),),
            "mtl": (metric("bins[gaze_deg]"), metric("bins[au_max_abs]")),
        },
    ),
    Fault(
        "boxes_rounded",
        f"RetinaFace's box offsets (loc) rounded to a grid of 1/{BOX_STEPS}",
        ("retinaface",),
        edit=round_output("loc", BOX_STEPS),
        catches={"retinaface": (metric("jitter[boxes]"), metric("snr_db[loc]"))},
    ),
)
FAULTS = {fault.name: fault for fault in CATALOGUE}
# The MTCNN faults go into one net at a time would hide behind the cascade; they go into all
# three, except the conv noise, which goes into the net in the middle of the cascade.
_SINGLE_NET = {"weight_noise": ("mtcnn_rnet",)}


def _quantize_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "in.onnx"), Path(tmp, "out.onnx")
        onnx.save(model, source)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        return onnx.load(target)


def faulty_models(fault: Fault, subject: str) -> tuple[str, ...]:
    if subject == "mtcnn" and fault.name in _SINGLE_NET:
        return _SINGLE_NET[fault.name]
    return SUBJECT_MODELS[subject]


def build_candidate(fault: Fault, subject: str, source: Path, target: Path) -> Candidate:
    """Write ``subject``'s models into ``target``, the faulty ones edited, with a manifest."""
    if fault.edit is None:
        return Candidate(source, fault.variant)
    manifest = read_manifest(source)
    filed_as = fault.filed_as or fault.variant
    models = {}
    for model in SUBJECT_MODELS[subject]:
        record = manifest.models[model]
        path = artifact_path(target, model, filed_as)
        path.parent.mkdir(parents=True, exist_ok=True)
        original = artifact_path(source, model, fault.variant)
        if model in faulty_models(fault, subject):
            edited = fault.edit(onnx.load(original), model)
            onnx.save(edited, path)
        else:
            shutil.copyfile(original, path)
        variant = rerecord_onnx(manifest.record(model, filed_as), path)
        models[model] = dataclasses.replace(record, variants={filed_as: variant})
    write_manifest(target, Manifest(tools=manifest.tools, models=models))
    return Candidate(target, filed_as)


def evaluate_fault(
    fault: Fault,
    subject: str,
    source: Path,
    work: Path,
    reference: ReferenceSet,
    tolerances: Tolerances,
) -> FaultResult:
    """Build the faulty candidate in ``work`` and run the suite's checks on it.

    A refusal of the candidate's artifacts (ONNX Runtime cannot load them ...) is a check's
    answer like any other; any other exception, while building the fault or running it, is the
    result's ``error``: the fault proved nothing and counts as not caught.
    """
    expected = fault.expected(subject)
    try:
        candidate = build_candidate(fault, subject, source, work)
    # Whatever broke, the catalogue goes on with the next fault and reports this one.
    except Exception as exc:
        error = f"{fault.name} on {subject}: building the fault failed: {_one_line(exc)}"
        return FaultResult(
            fault.name, subject, fault.filed_as or fault.variant, expected, error=error
        )
    try:
        return _judge_fault(fault, subject, candidate, expected, reference, tolerances)
    # The runner's refusals are answers (judge_subject keeps them); anything else escaping the
    # checks is a bug or a broken patch, which must not pass for a catch.
    except Exception as exc:
        error = f"{fault.name} on {subject}: the checks crashed: {_one_line(exc)}"
        return FaultResult(fault.name, subject, candidate.variant, expected, error=error)


def _judge_fault(
    fault: Fault,
    subject: str,
    candidate: Candidate,
    expected: tuple[Catch, ...],
    reference: ReferenceSet,
    tolerances: Tolerances,
) -> FaultResult:
    manifest = read_manifest(candidate.directory)
    registry = default_registry()
    findings = tuple(
        finding
        for model in SUBJECT_MODELS[subject]
        for finding in judge_conformance(
            candidate.directory, manifest, registry[model], candidate.variant
        ).findings
    )
    named = [c.name for c in expected if c.check == METRIC]
    # The checks that run frames of their own cost STAR 36 (jitter) and 20 (bins) calls: run
    # for the faults whose catch names them.
    costly = [c for c in COSTLY_CHECKS if any(_is_metric(name, c) for name in named)]
    with fault.patch() if fault.patch else contextlib.nullcontext():
        result = judge_subject(subject, candidate, reference, tolerances, costly=costly)
    measured = [m for m in result.measurements if any(_is_metric(m.metric, n) for n in named)]
    return FaultResult(
        fault.name,
        subject,
        candidate.variant,
        expected,
        findings,
        tuple(result.failures),
        refused=result.refused,
        untrained=_untrained(fault, reference),
        measured=tuple(worst_by_metric(measured)),
    )


def _untrained(fault: Fault, reference: ReferenceSet) -> str | None:
    """``fault.untrained_reason`` when the references come from a surrogate of a model the
    fault needs trained, else None."""
    parts = (reference, reference.jitter, reference.bins)
    sources = {model: w for part in parts if part is not None for model, w in part.weights.items()}
    surrogates = [m for m in fault.needs_trained if m in sources and sources[m].is_surrogate]
    if not surrogates:
        return None
    return f"not provable with surrogate {', '.join(surrogates)}: {fault.untrained_reason}"


def _one_line(exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
