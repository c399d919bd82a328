"""A real, numerically neutral slowdown of an artifact, to measure the gate's power.

``add_identity_convs`` inserts 1x1 convolutions whose weight is the identity matrix after a
feature map of the graph: the outputs stay bit-identical (each output is one input times 1.0
plus zeros), while every convolution costs real multiply-adds that ONNX Runtime cannot fold
away (the input is not a constant). Their number sets the slowdown; its size is measured, not
assumed.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from faceperf.artifacts.layout import artifact_path
from faceperf.artifacts.manifest import read_manifest, write_manifest
from faceperf.artifacts.onnx_export import rerecord_onnx


def widest_feature_map(model: onnx.ModelProto) -> tuple[str, int]:
    """The 4-D float tensor (and its channel count) where a 1x1 convolution costs the most
    (channels² x height x width multiply-adds)."""
    inferred = shape_inference.infer_shapes(model)
    best, best_size, channels = None, 0, 0
    for info in inferred.graph.value_info:
        tensor_type = info.type.tensor_type
        # A dynamic axis (batch) counts as 1: the cost per sample is what ranks the maps.
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in tensor_type.shape.dim]
        if len(dims) == 4 and all(dims) and tensor_type.elem_type == onnx.TensorProto.FLOAT:
            size = int(np.prod(dims)) * dims[1]
            if size > best_size:
                best, best_size, channels = info.name, size, dims[1]
    if best is None:
        raise ValueError("the graph has no 4-D float feature map with known shape")
    return best, channels


def add_identity_convs(model: onnx.ModelProto, count: int) -> onnx.ModelProto:
    """``count`` identity 1x1 convolutions after the graph's widest feature map."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    tensor, channels = widest_feature_map(model)
    weight = np.eye(channels, dtype=np.float32).reshape(channels, channels, 1, 1)
    model.graph.initializer.append(numpy_helper.from_array(weight, "slowdown_identity"))
    chain = [f"{tensor}_slowdown{i}" for i in range(count)]
    for node in model.graph.node:
        node.input[:] = [chain[-1] if name == tensor else name for name in node.input]
    producer = next(i for i, node in enumerate(model.graph.node) if tensor in node.output)
    convs = [
        helper.make_node("Conv", [source, "slowdown_identity"], [target])
        for source, target in zip([tensor, *chain[:-1]], chain, strict=True)
    ]
    for offset, conv in enumerate(convs, start=1):
        model.graph.node.insert(producer + offset, conv)
    return model


def slowed_copy(source: Path, target: Path, model: str, variant: str, count: int) -> Path:
    """A copy of the artifact folder ``source`` in which ``model``'s ``variant`` carries
    ``count`` identity convolutions (manifest updated to match); other files are linked."""
    manifest = read_manifest(source)
    shutil.copytree(source, target, copy_function=_link_or_copy)
    path = artifact_path(target, model, variant)
    path.unlink()
    onnx.save(add_identity_convs(onnx.load(artifact_path(source, model, variant)), count), path)
    record = manifest.models[model]
    variants = dict(record.variants)
    variants[variant] = rerecord_onnx(variants[variant], path)
    manifest.models[model] = dataclasses.replace(record, variants=variants)
    (target / "manifest.json").unlink()
    write_manifest(target, manifest)
    return target


def _link_or_copy(src: str, dst: str) -> str:
    try:
        Path(dst).hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)
    return dst
