"""What a localisation runs on and judges by: a model's fixture inputs made as the accuracy
suite makes them (``model_inputs``), fitted to a graph's input (``fit_input``, ``feeds``), the
ONNX graphs of an artifact folder (``check_model``, ``load_graph``), and the suite's SNR floor
and output views of a model (``snr_floor``, ``SUITE_OUTPUT_VIEWS``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import helper

from faceperf.accuracy import cases as suite_cases
from faceperf.accuracy.localize.execution import OutputView
from faceperf.accuracy.localize.result import LocalizeError
from faceperf.accuracy.tolerances import Tolerances, load_tolerances
from faceperf.artifacts.layout import ONNX_VARIANTS, artifact_path
from faceperf.artifacts.manifest import read_manifest
from faceperf.fixtures import faces as fixture_faces
from faceperf.fixtures.samples import RETINAFACE_SIZE
from faceperf.models import inputs as model_inputs_module

DEFAULT_CASES = 2


def _retinaface_anchors(outputs: Mapping[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    # The suite keeps RetinaFace's best-scoring anchors and an even sample of the rest: its floor
    # holds there, while the full tensors of honest FP16 sit ~3 dB lower (weak anchors' boxes).
    keep = suite_cases.retinaface_anchor_sample(outputs["conf"][0][:, 1])
    return lambda value: value[0][keep]


# How the accuracy suite judges each model's outputs, where not whole.
SUITE_OUTPUT_VIEWS: dict[str, OutputView] = {"retinaface": _retinaface_anchors}


def subject_of(model: str) -> str:
    """The tolerances subject of a model: the MTCNN nets share ``mtcnn``."""
    subjects = suite_cases.SUBJECT_MODELS.items()
    return next((subject for subject, models in subjects if model in models), model)


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


def feeds(model: onnx.ModelProto, arrays: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
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


def listed_artifact(directory: Path, model: str, variant: str) -> Path:
    """The file of ``variant`` of ``model`` in an artifact folder whose manifest lists it."""
    manifest = read_manifest(directory)
    if model not in manifest.models:
        raise LocalizeError(f"{directory} has no {model}")
    if variant not in manifest.models[model].variants:
        raise LocalizeError(f"{directory} has no {variant} variant of {model}")
    return artifact_path(directory, model, variant)


def load_graph(directory: Path, model: str, variant: str) -> onnx.ModelProto:
    """The ONNX graph of ``variant`` of ``model`` in an artifact folder."""
    if variant not in ONNX_VARIANTS:
        raise LocalizeError(
            f"variant '{variant}' is not an ONNX variant; "
            f"expected one of {', '.join(ONNX_VARIANTS)}"
        )
    path = listed_artifact(directory, model, variant)
    try:
        return onnx.load(path)
    except Exception as err:  # OSError, or protobuf's DecodeError for a corrupt file
        raise LocalizeError(f"{path}: cannot read it as ONNX ({type(err).__name__})") from None
