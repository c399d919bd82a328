"""Converting models to Core ML: mlprogram, FP16, CPU_AND_NE, fixed shapes, named tensors.

These are the settings the optimisation reports found best on Apple Silicon (STAR 2.31x, MTL
8.1x over their baselines). Conversion runs on Linux; prediction needs macOS.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceperf.artifacts.manifest import TensorInfo
from faceperf.errors import ArtifactError
from faceperf.models.registry import ModelSpec

DEPLOYMENT_TARGET = "macOS13"
COMPUTE_UNITS = "CPU_AND_NE"
PRECISION = "float16"
# Upper bounds for the axes that cannot be fixed (P-Net pyramid levels, R/O-Net candidates).
_RANGE_UPPER = {"batch": 256, "height": 1080, "width": 1920}


def _coremltools():
    # coremltools prints "Failed to load _MLModelProxy" on Linux at import: expected (no Core ML
    # framework here) and harmless for conversion, so it is kept off the user's terminal.
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    import coremltools as ct

    return ct


def convert_coreml(model: nn.Module, spec: ModelSpec, path: Path) -> None:
    """Trace ``model`` and write ``path`` (an .mlpackage folder), replacing it atomically."""
    ct = _coremltools()
    example = torch.zeros(spec.fixed_shape)
    shape = [
        ct.RangeDim(
            lower_bound=1 if axis == 0 else 12,
            upper_bound=_RANGE_UPPER[name],
            default=spec.fixed_shape[axis],
        )
        if (name := spec.fixed_dynamic.get(axis))
        else size
        for axis, size in enumerate(spec.fixed_shape)
    ]
    # coremltools draws its own progress bars on stderr for every pass pipeline; the build shows
    # one progress line per model instead.
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example)
        mlmodel = ct.convert(
            traced,
            # FP16 in and out: the Neural Engine computes in FP16, so FP32 tensors would only add
            # casts at both ends of the program.
            inputs=[ct.TensorType(name=spec.input_name, shape=ct.Shape(shape), dtype=np.float16)],
            outputs=[ct.TensorType(name=name, dtype=np.float16) for name in spec.output_names],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT16,
            compute_units=getattr(ct.ComputeUnit, COMPUTE_UNITS),
            minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
        )
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.stem}."))
    try:
        mlmodel.save(str(staging / path.name))
        if path.exists():
            shutil.rmtree(path)
        (staging / path.name).rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def describe_coreml(path: Path) -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
    """Inputs and outputs declared in an mlpackage's spec."""
    ct = _coremltools()
    try:
        spec = load_coreml_spec(path)
    except Exception as err:  # coremltools raises many types for a broken package
        raise ArtifactError(f"{path}: not a readable mlpackage ({err})") from None
    return (
        tuple(_feature(f, ct) for f in spec.description.input),
        tuple(_feature(f, ct) for f in spec.description.output),
    )


def load_coreml_spec(path: Path) -> object:
    """The spec of an .mlpackage (works on Linux: no Core ML framework needed)."""
    return _coremltools().utils.load_spec(str(path))


def _feature(feature, ct) -> TensorInfo:
    array = feature.type.multiArrayType
    dtypes = {
        array.FLOAT32: "float32",
        array.FLOAT16: "float16",
        array.DOUBLE: "float64",
        array.INT32: "int32",
    }
    shape: tuple[int | str, ...] = tuple(int(d) for d in array.shape)
    if array.HasField("shapeRange"):
        shape = tuple(
            int(r.lowerBound) if r.lowerBound == r.upperBound else f"{r.lowerBound}..{r.upperBound}"
            for r in array.shapeRange.sizeRanges
        )
    return TensorInfo(feature.name, shape, dtypes.get(array.dataType, str(array.dataType)))
