"""Exporting models to ONNX: the plain baseline, the ORT-optimised fixed-shape graph, FP16.

The legacy TorchScript exporter is used on purpose: from the same weights it writes
byte-identical files (the dynamo exporter's graphs carry unstable names), its graphs are plain
ONNX ops that every runtime and converter reads, and ``dynamic_axes`` maps directly onto the
artifact contract.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from faceperf.artifacts.manifest import TensorInfo, VariantRecord
from faceperf.artifacts.onnx_fold import fold_batchnorm
from faceperf.errors import ArtifactError
from faceperf.fileio import sha256_path, size_of
from faceperf.models.registry import ModelSpec

OPSET = 17
# BASIC = constant folding, redundant-node elimination and Conv+BN/Add/Mul fusions, all in plain
# ONNX ops. EXTENDED and ALL add com.microsoft fused kernels and CPU-specific layouts that only the
# CPU provider runs, which would tie the "optimized" artifact to one machine and break the CoreML
# execution provider and external validators.
ORT_OFFLINE_LEVEL = "basic"
# Ops kept in FP32 behind Casts. Reductions and MatMul: MTL's AU graph takes 1280-d dot products
# and L2 norms that overflow FP16's 65504 on out-of-range inputs (NaN AUs); TopK ranks those
# products. Softmax, InstanceNormalization and Div are numerically delicate in FP16, and Resize
# has no FP16 kernel on ORT's CPU provider. Convs and Gemms, where the time goes, stay FP16.
FP16_BLOCKED_OPS = (
    "Resize",
    "TopK",
    "InstanceNormalization",
    "Softmax",
    "ReduceSum",
    "ReduceL2",
    "MatMul",
    "Div",
)


def export_onnx(model: nn.Module, spec: ModelSpec, path: Path, dynamic: dict[int, str]) -> None:
    """Trace ``model`` at ``spec.fixed_shape`` and write it to ``path`` (FP32).

    Args:
        model: the eval-mode module with its weights.
        spec: the model's registry entry.
        path: the .onnx file to write.
        dynamic: input axes to leave symbolic, e.g. ``{0: "batch"}``.
    """
    example = torch.zeros(spec.fixed_shape)
    output_axes, output_shapes = _output_axes(model, spec, dynamic)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and exporter deprecation chatter
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[spec.input_name],
            output_names=list(spec.output_names),
            dynamic_axes={spec.input_name: dict(dynamic), **output_axes},
            do_constant_folding=True,
            # PRESERVE keeps the eval-mode BatchNorms as nodes: fold_batchnorm folds them in
            # float64, where the exporter's own folding gives CPU-dependent bytes.
            training=torch.onnx.TrainingMode.PRESERVE,
        )
    exported = onnx.load(str(path))
    fold_batchnorm(exported)
    _pin_static_output_dims(exported, output_axes, output_shapes)
    onnx.save(exported, str(path))


def _pin_static_output_dims(
    model: onnx.ModelProto,
    output_axes: dict[str, dict[int, str]],
    shapes: dict[str, tuple[int, ...]],
) -> None:
    # The exporter leaves every output dim symbolic once any input dim is; the contract wants
    # only the dims that really move to be symbolic (loc is (batch, anchors, 4), not (?, ?, ?)).
    for output in model.graph.output:
        moving = output_axes.get(output.name, {})
        for i, dim in enumerate(output.type.tensor_type.shape.dim):
            if i in moving:
                dim.dim_param = moving[i]
            else:
                dim.dim_value = shapes[output.name][i]


def _output_axes(
    model: nn.Module, spec: ModelSpec, dynamic: dict[int, str]
) -> tuple[dict[str, dict[int, str]], dict[str, tuple[int, ...]]]:
    """Which output axes move when the dynamic input axes move (found by running twice)."""
    grown = list(spec.fixed_shape)
    for axis in dynamic:
        grown[axis] += 2 if axis == 0 else 16
    with torch.no_grad():
        small = model(torch.zeros(spec.fixed_shape))
        large = model(torch.zeros(grown))
    axes, shapes = {}, {}
    for name, a, b in zip(spec.output_names, small, large, strict=True):
        shapes[name] = tuple(a.shape)
        moving = {
            i: ("batch" if i == 0 and 0 in dynamic else f"{name}_{i}")
            for i, (x, y) in enumerate(zip(a.shape, b.shape, strict=True))
            if x != y
        }
        if moving:
            axes[name] = moving
    return axes, shapes


def optimize_onnx(source: Path, target: Path) -> None:
    """Save ONNX Runtime's offline-optimised graph of ``source`` as ``target``."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    if not target.exists():
        raise ArtifactError(f"{target}: ONNX Runtime did not write the optimised graph")


def convert_fp16(source: Path, target: Path) -> None:
    """Convert ``source`` to FP16 weights and compute, FP32 inputs and outputs, and verify it.

    Naive conversions of these models produced graphs ONNX Runtime refused (mixed float/float16
    inputs on a Conv, Casts on shape paths), so the result is loaded and run before it is kept.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(source))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about every value it clamps to FP16 range
        half = convert_float_to_float16(
            model, keep_io_types=True, op_block_list=list(FP16_BLOCKED_OPS)
        )
    # The converter appends its input Casts after the nodes that read them; ONNX Runtime does not
    # mind but the ONNX checker and other converters demand topological order. (Re-saving through
    # ORT would sort it too, but would also bake in the Casts ORT adds around every op its CPU
    # provider lacks an FP16 kernel for, and the artifact is meant for other providers too.)
    _sort_topologically(half.graph)
    _drop_duplicate_casts(half.graph)
    onnx.save(half, str(target))
    try:
        smoke_run(target)
    except Exception as err:  # an ORT refusal: report which file and why, in one line
        raise ArtifactError(f"{target}: FP16 graph does not run in ONNX Runtime: {err}") from None


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so every node follows its producers, keeping the order otherwise."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(name in available for name in n.input)]
        if not ready:
            raise ArtifactError(f"graph {graph.name!r} has a cycle or an undefined input")
        for node in ready:
            available.update(node.output)
        ordered.extend(ready)
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    del graph.node[:]
    graph.node.extend(ordered)


def _drop_duplicate_casts(graph: onnx.GraphProto) -> None:
    # When one FP16 value feeds two blocked (FP32) ops, the converter inserts the same Cast twice,
    # same output name included, which ONNX Runtime rejects as a duplicate definition. The copies
    # are identical, so keeping the first is exact.
    produced: dict[str, bytes] = {}
    kept = []
    for node in graph.node:
        key = node.SerializeToString()
        if node.output and node.output[0] in produced:
            if produced[node.output[0]] != key:
                raise ArtifactError(
                    f"graph {graph.name!r}: two different nodes define {node.output[0]!r}"
                )
            continue
        produced.update({name: key for name in node.output})
        kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)


def smoke_run(path: Path) -> list[np.ndarray]:
    """Run ``path`` once on zeros of its declared input shapes (dynamic dims taken as 1, or 24)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {}
    for item in session.get_inputs():
        shape = [
            d if isinstance(d, int) else (1 if i == 0 else 24) for i, d in enumerate(item.shape)
        ]
        dtype = np.float16 if "float16" in item.type else np.float32
        feeds[item.name] = np.zeros(shape, dtype)
    return session.run(None, feeds)


def describe_onnx(path: Path) -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
    """The graph's declared inputs and outputs as TensorInfo records."""
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    inputs = tuple(_info(v) for v in graph.input if v.name not in initializers)
    return inputs, tuple(_info(v) for v in graph.output)


def rerecord_onnx(record: VariantRecord, path: Path) -> VariantRecord:
    """``record`` describing the ONNX file at ``path`` as it is now: its hash, size and the
    tensors its graph declares (what a reconversion's own tooling writes after editing it)."""
    inputs, outputs = describe_onnx(path)
    return dataclasses.replace(
        record, sha256=sha256_path(path), size=size_of(path), inputs=inputs, outputs=outputs
    )


def _info(value: onnx.ValueInfoProto) -> TensorInfo:
    tensor = value.type.tensor_type
    dims = tuple(
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim
    )
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
    return TensorInfo(value.name, dims, dtype)


def temporary_onnx_path(directory: Path, stem: str) -> Path:
    fd, name = tempfile.mkstemp(dir=directory, prefix=f".{stem}.", suffix=".onnx")
    os.close(fd)
    return Path(name)
