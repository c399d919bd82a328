"""Small artifact folders for the memory and size tests: one model's variants copied out of
the built set, edited where a test needs a fault, the manifest kept consistent."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import onnx

from faceperf.artifacts.layout import artifact_path
from faceperf.artifacts.manifest import Manifest, read_manifest, write_manifest
from faceperf.artifacts.onnx_export import rerecord_onnx


def one_model_folder(source: Path, target: Path, model: str, variants: tuple[str, ...]) -> Path:
    """``target`` holding ``model``'s ``variants`` from ``source``, with a manifest of just
    those."""
    manifest = read_manifest(source)
    record = manifest.models[model]
    for variant in variants:
        path = artifact_path(target, model, variant)
        path.parent.mkdir(parents=True, exist_ok=True)
        original = artifact_path(source, model, variant)
        if original.is_dir():
            shutil.copytree(original, path)
        else:
            shutil.copy2(original, path)
    kept = dataclasses.replace(record, variants={v: record.variants[v] for v in variants})
    write_manifest(target, Manifest(tools=manifest.tools, models={model: kept}))
    return target


def replace_variant(directory: Path, model: str, variant: str, graph: onnx.ModelProto) -> Path:
    """``directory``'s ``model``/``variant`` replaced by ``graph``, its manifest record rewritten
    to describe the new file (hash, size, tensors), as a reconversion's tooling would."""
    path = artifact_path(directory, model, variant)
    path.unlink()
    onnx.save(graph, path)
    manifest = read_manifest(directory)
    record = manifest.models[model]
    variants = dict(record.variants)
    variants[variant] = rerecord_onnx(variants[variant], path)
    manifest.models[model] = dataclasses.replace(record, variants=variants)
    write_manifest(directory, manifest)
    return path


def ballasted_pair(source: Path, base: Path, model: str, megabytes: float) -> tuple[Path, Path]:
    """Two one-model folders of ``model``'s ``optimized`` variant under ``base``: as built
    (``plain``), and holding one extra intermediate tensor of ``megabytes`` MB (``heavy``;
    bench/memory/ballast.py: outputs unchanged)."""
    from faceperf.bench.memory.ballast import add_ballast

    plain = one_model_folder(source, base / "plain", model, ("optimized",))
    heavy = one_model_folder(source, base / "heavy", model, ("optimized",))
    graph = onnx.load(artifact_path(plain, model, "optimized"))
    replace_variant(heavy, model, "optimized", add_ballast(graph, megabytes))
    return plain, heavy
