"""Reference files: what they store, how they are written, and how a mismatch is reported."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest

from faceperf.accuracy.cases import SUBJECT_MODELS, SUBJECTS, Candidate, run_subject
from faceperf.accuracy.references import (
    ReferenceError,
    ReferenceSet,
    build_reference,
    check_weights,
    read_reference,
    reference_path,
    weight_mismatches,
    write_reference,
)
from faceperf.artifacts.manifest import read_manifest, write_manifest
from faceperf.weights.provenance import WeightSource


@pytest.fixture(scope="module")
def mtl_reference(artifacts_dir):
    return build_reference("mtl", artifacts_dir)


def test_provenance_names_artifacts_weights_and_versions(mtl_reference, artifacts_dir):
    provenance = mtl_reference.provenance
    record = read_manifest(artifacts_dir).models["mtl"]
    assert provenance["models"]["mtl"]["artifact_sha256"] == record.variants["baseline"].sha256
    assert provenance["models"]["mtl"]["weights"] == record.weights.to_json()
    assert {"onnxruntime", "numpy"} <= set(provenance["versions"])
    assert provenance["cases"] == list(mtl_reference.outputs)


def test_round_trip_keeps_every_array_and_the_provenance(mtl_reference, tmp_path):
    path = tmp_path / "mtl.npz"
    write_reference(mtl_reference, path)
    loaded = read_reference("mtl", tmp_path)
    assert loaded.provenance == json.loads(json.dumps(mtl_reference.provenance))
    assert loaded.outputs.keys() == mtl_reference.outputs.keys()
    for case, arrays in mtl_reference.outputs.items():
        for name, value in arrays.items():
            np.testing.assert_array_equal(loaded.outputs[case][name], value)


def test_a_failed_write_leaves_the_old_file_intact(mtl_reference, tmp_path, monkeypatch):
    path = tmp_path / "mtl.npz"
    path.write_bytes(b"old")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_reference(mtl_reference, path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["mtl.npz"]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_the_committed_references_fit_the_default_artifacts(subject, artifacts_dir):
    reference = read_reference(subject)
    check_weights(reference, artifacts_dir)
    assert set(reference.weights) == set(SUBJECT_MODELS[subject])


def test_the_committed_mtl_references_are_what_the_baseline_answers_today(artifacts_dir):
    # Guards the references against a silent change of the pipeline's pre-processing.
    reference = read_reference("mtl")
    outputs = run_subject("mtl", Candidate(artifacts_dir, "baseline"))
    for case, arrays in reference.outputs.items():
        np.testing.assert_allclose(outputs[case]["tensor/au"], arrays["tensor/au"], atol=1e-4)


def test_references_from_other_weights_say_so_and_how_to_rebuild(artifacts_dir, tmp_path):
    reference = read_reference("star")
    other = dict(reference.provenance)
    other["models"] = {
        "star": {**other["models"]["star"], "weights": {"kind": "real", "sha256": "ab" * 32}}
    }
    foreign = ReferenceSet("star", reference.outputs, other)
    assert weight_mismatches(foreign, read_manifest(artifacts_dir)) == [
        "star: references from real checkpoint sha256 abababababab, artifacts from surrogate seed 0"
    ]
    with pytest.raises(ReferenceError) as error:
        check_weights(foreign, artifacts_dir)
    message = str(error.value)
    assert "built from other weights" in message
    assert f"faceperf references build --artifacts {artifacts_dir}" in message
    assert "\n" not in message


def test_a_manifest_with_new_descriptive_text_still_matches(artifacts_dir, tmp_path):
    # Only what identifies the weights counts, not the wording of how they were made.
    import shutil

    candidate = tmp_path / "build"
    shutil.copytree(artifacts_dir, candidate, ignore=shutil.ignore_patterns("*.mlpackage"))
    manifest = read_manifest(candidate)
    star = manifest.models["star"]
    reworded = {**star.weights.detail, "method": "described differently"}
    manifest.models["star"] = replace(star, weights=WeightSource(star.weights.kind, reworded))
    write_manifest(candidate, manifest)
    check_weights(read_reference("star"), candidate)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a zip", "not a readable reference file"), (None, "no reference outputs for star")],
)
def test_missing_or_corrupt_reference_files_are_named(tmp_path, content, message):
    if content is not None:
        reference_path("star", tmp_path).write_bytes(content)
    with pytest.raises(ReferenceError, match=message) as error:
        read_reference("star", tmp_path)
    assert str(reference_path("star", tmp_path)) in str(error.value)


def test_a_reference_of_another_subject_is_refused(mtl_reference, tmp_path):
    write_reference(mtl_reference, reference_path("star", tmp_path))
    with pytest.raises(ReferenceError, match="for 'mtl', expected format 1 for 'star'"):
        read_reference("star", tmp_path)
