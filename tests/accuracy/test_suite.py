"""The accuracy suite as its users run it (``pytest accuracy_tests --candidate DIR``), in a
subprocess: a faulty candidate fails naming model, variant, fixture, metric, value and limit,
and bad inputs give one clear message each.

That honest artifacts pass is proven by accuracy_tests itself in the same ``make test``: it runs
on weights/build, which is rebuilt whenever its fingerprint (build code, weights, tool versions)
differs from the current code's, so it is what a build from scratch gives (a private rebuild
when stale, see conftest.py), and tests/artifacts/test_build.py checks that a rebuild is
byte-identical."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from accuracy_runs import accuracy_suite

from faceperf.accuracy.faults import FAULTS, build_candidate
from faceperf.artifacts.layout import artifact_path
from faceperf.artifacts.manifest import read_manifest, write_manifest
from faceperf.cli import main
from faceperf.weights.provenance import WeightSource

pytestmark = pytest.mark.slow


def _copy(artifacts_dir: Path, target: Path, models: list[str]) -> Path:
    manifest = read_manifest(artifacts_dir)
    for model in models:
        shutil.copytree(artifacts_dir / model, target / model)
    kept = {m: manifest.models[m] for m in models}
    write_manifest(target, dataclasses.replace(manifest, models=kept))
    return target


def test_a_faulty_candidate_fails_naming_what_where_and_by_how_much(artifacts_dir, tmp_path):
    candidate = build_candidate(FAULTS["mtl_heads_swapped"], "mtl", artifacts_dir, tmp_path / "c")
    run = accuracy_suite("--candidate", str(candidate.directory))
    assert run.returncode == 1, run.stdout + run.stderr
    assert (
        "FAILED accuracy_tests/test_accuracy.py::test_accuracy[mtl-optimized-multitask]"
        in run.stdout
    )
    # model, variant, fixture, metric, value, limit
    assert "mtl optimized [all] emotion_agreement = " in run.stdout
    assert "(limit >= 1)" in run.stdout
    assert "mtl optimized [grace_hopper#0] au_max_abs = " in run.stdout
    # The models the candidate lacks are skipped with the reason, not failed.
    assert "has no retinaface: retinaface is not checked" in run.stdout


def test_the_suite_and_the_command_fail_an_fp32_graph_filed_as_fp16_alike(
    artifacts_dir, tmp_path, capsys
):
    candidate = build_candidate(FAULTS["fp16_is_fp32"], "mtl", artifacts_dir, tmp_path / "c")
    finding = "mtl/optimized_fp16: precision: claims float16 but only 0% of its weights are FP16"
    run = accuracy_suite("--candidate", str(candidate.directory), "-k", "mtl")
    assert run.returncode == 1, run.stdout + run.stderr
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, run.stdout
    assert "test_conformance[mtl-optimized_fp16]" in failed[0]
    assert finding in run.stdout
    code = main(["accuracy", "check", "--candidate", str(candidate.directory)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"conformance {finding.replace(': precision:', ': FAILS precision:')}" in out


def test_a_corrupt_artifact_is_one_clear_failure(artifacts_dir, tmp_path):
    candidate = _copy(artifacts_dir, tmp_path / "c", ["star"])
    path = artifact_path(candidate, "star", "optimized")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    run = accuracy_suite("--candidate", str(candidate), "-k", "star")
    assert run.returncode == 1, run.stdout + run.stderr
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, run.stdout
    assert failed[0].startswith(
        "FAILED accuracy_tests/test_accuracy.py::test_conformance[star-optimized]"
    )
    assert "optimized.onnx differs from its manifest sha256" in run.stdout
    assert "star/optimized fails its file check" in run.stdout


def test_references_from_other_weights_give_one_message_with_the_way_out(artifacts_dir, tmp_path):
    candidate = _copy(artifacts_dir, tmp_path / "c", ["star"])
    manifest = read_manifest(candidate)
    real = WeightSource("real", {"sha256": "cd" * 32})
    manifest.models["star"] = dataclasses.replace(manifest.models["star"], weights=real)
    write_manifest(candidate, manifest)
    run = accuracy_suite("--candidate", str(candidate), "-k", "star and not conformance")
    assert run.returncode == 1, run.stdout + run.stderr
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "test_references_match_the_weights[star]" in failed[0]
    assert (
        "star: references from surrogate seed 0, artifacts from real checkpoint sha256"
        in run.stdout
    )
    assert "faceperf references build --artifacts" in run.stdout


def test_a_malformed_tolerances_file_stops_the_run_at_collection(artifacts_dir, tmp_path):
    bad = tmp_path / "tolerances.toml"
    bad.write_text("[landmark]\nnme_max_pct = 0.5\n")
    run = accuracy_suite("--artifacts", str(artifacts_dir), "--tolerances", str(bad))
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert f"{bad}: unknown section [landmark]" in run.stderr
