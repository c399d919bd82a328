"""``faceperf accuracy check`` on real faulty candidates: conformance is judged as the pytest
suite judges it, and a model ONNX Runtime cannot load fails its own subject while the others are
still judged. Each candidate copies only the artifacts it needs, and the check runs one variant
of as few subjects as show the point."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import onnx

from faceperf.accuracy.faults import naive_fp16
from faceperf.artifacts.layout import artifact_path
from faceperf.artifacts.manifest import read_manifest, write_manifest
from faceperf.artifacts.onnx_export import rerecord_onnx
from faceperf.cli import main

FP16 = "optimized_fp16"


def _copy(source: Path, target: Path, models: dict[str, tuple[str, ...]]) -> Path:
    """A candidate folder holding these variants of these models, copied from ``source``, with
    the manifest cut down to them."""
    manifest = read_manifest(source)
    kept = {}
    for model, variants in models.items():
        record = manifest.models[model]
        for variant in variants:
            path = artifact_path(target, model, variant)
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(artifact_path(source, model, variant), path)
        kept[model] = dataclasses.replace(
            record, variants={v: record.variants[v] for v in variants}
        )
    write_manifest(target, dataclasses.replace(manifest, models=kept))
    return target


def _refile(candidate: Path, model: str, variant: str, graph: onnx.ModelProto) -> None:
    """Write ``graph`` as the candidate's ``model``/``variant`` and record it in the manifest as
    it now is (hash, size, tensors), as a reconversion's own tooling would: only the checks can
    tell it is wrong. The record keeps the variant's claims (precision float16, settings)."""
    path = artifact_path(candidate, model, variant)
    onnx.save(graph, path)
    manifest = read_manifest(candidate)
    record = manifest.models[model]
    variants = {**record.variants, variant: rerecord_onnx(record.variants[variant], path)}
    manifest.models[model] = dataclasses.replace(record, variants=variants)
    write_manifest(candidate, manifest)


def _check(capsys, candidate: Path, *options: str) -> tuple[int, str]:
    code = main(["accuracy", "check", "--candidate", str(candidate), *options])
    return code, capsys.readouterr().out


def test_an_fp32_graph_filed_as_fp16_fails_the_check_on_conformance(
    artifacts_dir, tmp_path, capsys
):
    candidate = _copy(artifacts_dir, tmp_path / "candidate", {"mtl": ("optimized", FP16)})
    fp32 = onnx.load(artifact_path(candidate, "mtl", "optimized"))
    _refile(candidate, "mtl", FP16, fp32)

    code, out = _check(capsys, candidate, "--subjects", "mtl", "--variants", FP16)

    assert code == 1, out
    assert "mtl optimized_fp16: fail" in out
    assert (
        "conformance mtl/optimized_fp16: FAILS precision: claims float16 but only 0% of its "
        "weights are FP16" in out
    )
    # Its outputs are the FP32 graph's: only conformance can see the fault.
    assert "accuracy: 0 of " in out
    assert out.rstrip().endswith(
        "1 of 1 subject/variant checks fail: mtl optimized_fp16; 0 skipped"
    )


def test_a_model_onnx_runtime_cannot_load_fails_its_subject_and_the_others_are_judged(
    artifacts_dir, tmp_path, capsys
):
    candidate = _copy(
        artifacts_dir, tmp_path / "candidate", {"mtl": (FP16,), "retinaface": (FP16,)}
    )
    # The real conversion slip, not a stand-in: onnxconverter-common, keep_io_types.
    _refile(
        candidate,
        "mtl",
        FP16,
        naive_fp16(onnx.load(artifact_path(artifacts_dir, "mtl", "optimized")), "mtl"),
    )

    # mtl first: the subject after the unloadable one must still be judged.
    code, out = _check(capsys, candidate, "--subjects", "mtl,retinaface", "--variants", FP16)

    assert code == 1, out
    mtl, retinaface = out.split("retinaface optimized_fp16: ")
    assert mtl.startswith("mtl optimized_fp16: fail")
    refusal = next(line for line in mtl.splitlines() if "does not run" in line)
    assert f"{artifact_path(candidate, 'mtl', FP16)}: ONNX Runtime cannot load it:" in refusal
    assert "Type Error" in refusal and "/au_regressor/gnn/Cast" in refusal
    assert retinaface.startswith("pass"), out
    assert "retinaface optimized_fp16 [all] mean_iou" in retinaface
    assert "1 of 2 subject/variant checks fail: mtl optimized_fp16" in out
