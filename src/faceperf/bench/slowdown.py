"""Real, numerically neutral slowdowns of an artifact, to measure the gates' power.

``add_identity_convs`` inserts 1x1 convolutions whose weight is the identity matrix after a
feature map of the graph: the outputs stay bit-identical (each output is one input times 1.0
plus zeros), while every convolution costs real multiply-adds that ONNX Runtime cannot fold
away (the input is not a constant). Their number sets the slowdown; its size is measured, not
assumed.

``split_grouped_convs`` wastes the machine instead: the same arithmetic spread over many small
convolutions, which the portable budgets (bench/calibration.py) must catch on any CPU.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
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


def split_grouped_convs(model: onnx.ModelProto, channels_per_conv: int = 4) -> onnx.ModelProto:
    """Every grouped convolution (depthwise included) lowered to a Split, one convolution per
    ``channels_per_conv`` groups, and a Concat: what a converter emits for a target whose
    grouped convolution is limited, and a graph ONNX Runtime cannot fuse back.

    The outputs are the same (each group is computed alone either way) and so is the FLOP count
    (bench/speedups/flops.py counts every convolution's multiply-adds), so the efficiency of
    bench/calibration.py drops by the whole slowdown: work that carries no arithmetic.

    Args:
        model: the graph, edited in place and returned; weights and biases must be initializers.
        channels_per_conv: groups computed by each of the new convolutions; must divide every
            grouped convolution's group count.
    """
    if channels_per_conv < 1:
        raise ValueError(f"channels_per_conv must be at least 1, got {channels_per_conv}")
    initializers = {init.name: init for init in model.graph.initializer}
    nodes, added = [], []
    for index, node in enumerate(model.graph.node):
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        if node.op_type != "Conv" or groups == 1:
            nodes.append(node)
            continue
        if groups % channels_per_conv:
            raise ValueError(
                f"{node.name or f'node {index}'}: {groups} groups do not split into "
                f"convolutions of {channels_per_conv} groups"
            )
        parts = groups // channels_per_conv
        prefix = f"{node.name or index}_grouped"  # unnamed nodes must not collide
        weight = numpy_helper.to_array(initializers[node.input[1]])
        bias = (
            numpy_helper.to_array(initializers[node.input[2]])
            if len(node.input) > 2 and node.input[2]
            else None
        )
        out_per_part = weight.shape[0] // parts
        in_per_part = weight.shape[1] * channels_per_conv
        split = f"{prefix}_split_sizes"
        added.append(numpy_helper.from_array(np.full(parts, in_per_part, np.int64), split))
        pieces = [f"{prefix}_part{i}" for i in range(parts)]
        nodes.append(helper.make_node("Split", [node.input[0], split], pieces, axis=1))
        attributes = {
            a.name: helper.get_attribute_value(a) for a in node.attribute if a.name != "group"
        }
        outputs = []
        for i, piece in enumerate(pieces):
            rows = slice(i * out_per_part, (i + 1) * out_per_part)
            inputs = [piece, f"{prefix}_w{i}"]
            added.append(numpy_helper.from_array(weight[rows], inputs[1]))
            if bias is not None:
                inputs.append(f"{prefix}_b{i}")
                added.append(numpy_helper.from_array(bias[rows], inputs[2]))
            outputs.append(f"{prefix}_out{i}")
            nodes.append(
                helper.make_node(
                    "Conv", inputs, [outputs[-1]], group=channels_per_conv, **attributes
                )
            )
        nodes.append(helper.make_node("Concat", outputs, [node.output[0]], axis=1))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(added)
    used = {name for node in model.graph.node for name in node.input}
    kept = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def slowed_copy(
    source: Path, target: Path, model: str, variant: str, count: int, tensor: str | None = None
) -> Path:
    """A copy of the artifact folder ``source`` in which ``model``'s ``variant`` carries
    ``count`` identity convolutions after ``tensor`` (default: the widest feature map; manifest
    updated to match); other files are linked."""
    return edited_copy(
        source, target, model, variant, lambda graph: add_identity_convs(graph, count, tensor)
    )


def edited_copy(
    source: Path,
    target: Path,
    model: str,
    variant: str,
    edit: Callable[[onnx.ModelProto], onnx.ModelProto],
) -> Path:
    """A copy of the artifact folder ``source`` in which ``model``'s ``variant`` is ``edit``ed
    (manifest updated to match); other files are linked."""
    manifest = read_manifest(source)
    shutil.copytree(source, target, copy_function=_link_or_copy)
    path = artifact_path(target, model, variant)
    path.unlink()
    onnx.save(edit(onnx.load(artifact_path(source, model, variant))), path)
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
