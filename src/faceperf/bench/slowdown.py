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


def feature_maps(model: onnx.ModelProto) -> list[tuple[str, int, int]]:
    """Every 4-D float tensor of known shape as (name, channels, multiply-adds of one identity
    1x1 convolution on it), most expensive first: where a slowdown of a chosen size can go."""
    inferred = shape_inference.infer_shapes(model)
    maps = []
    for info in inferred.graph.value_info:
        tensor_type = info.type.tensor_type
        # A dynamic axis (batch) counts as 1: the cost per sample is what ranks the maps.
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in tensor_type.shape.dim]
        if len(dims) == 4 and all(dims) and tensor_type.elem_type == onnx.TensorProto.FLOAT:
            maps.append((info.name, dims[1], int(np.prod(dims)) * dims[1]))
    if not maps:
        raise ValueError("the graph has no 4-D float feature map with known shape")
    return sorted(maps, key=lambda entry: -entry[2])


def widest_feature_map(model: onnx.ModelProto) -> tuple[str, int]:
    """The 4-D float tensor (and its channel count) where a 1x1 convolution costs the most
    (channels² x height x width multiply-adds)."""
    name, channels, _ = feature_maps(model)[0]
    return name, channels


def add_identity_convs(
    model: onnx.ModelProto, count: int, tensor: str | None = None
) -> onnx.ModelProto:
    """``count`` identity 1x1 convolutions after ``tensor`` (default: the widest feature map).

    Args:
        model: the graph, edited in place and returned.
        count: convolutions to chain.
        tensor: a 4-D float tensor of the graph (see :func:`feature_maps`), to size the cost.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    maps = {name: channels for name, channels, _ in feature_maps(model)}
    if tensor is None:
        tensor, channels = widest_feature_map(model)
    elif tensor not in maps:
        raise ValueError(f"tensor {tensor!r} is not a 4-D float feature map of known shape")
    else:
        channels = maps[tensor]
    weight = np.eye(channels, dtype=np.float32).reshape(channels, channels, 1, 1)
    weight_name = f"slowdown_identity_{channels}"
    if not any(init.name == weight_name for init in model.graph.initializer):
        model.graph.initializer.append(numpy_helper.from_array(weight, weight_name))
    chain = [f"{tensor}_slowdown{i}" for i in range(count)]
    for node in model.graph.node:
        node.input[:] = [chain[-1] if name == tensor else name for name in node.input]
    for output in model.graph.output:
        if output.name == tensor:
            raise ValueError(f"tensor {tensor!r} is a graph output; pick an inner feature map")
    producer = next(i for i, node in enumerate(model.graph.node) if tensor in node.output)
    convs = [
        helper.make_node("Conv", [source, weight_name], [target])
        for source, target in zip([tensor, *chain[:-1]], chain, strict=True)
    ]
    for offset, conv in enumerate(convs, start=1):
        model.graph.node.insert(producer + offset, conv)
    return model


def slowed_copy(
    source: Path, target: Path, model: str, variant: str, count: int, tensor: str | None = None
) -> Path:
    """A copy of the artifact folder ``source`` in which ``model``'s ``variant`` carries
    ``count`` identity convolutions after ``tensor`` (default: the widest feature map; manifest
    updated to match); other files are linked."""
    manifest = read_manifest(source)
    shutil.copytree(source, target, copy_function=_link_or_copy)
    path = artifact_path(target, model, variant)
    path.unlink()
    edited = add_identity_convs(onnx.load(artifact_path(source, model, variant)), count, tensor)
    onnx.save(edited, path)
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
