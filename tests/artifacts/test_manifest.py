"""The manifest's weights source as a typed record: its JSON is today's, byte for byte, in the
manifest and in the accuracy references' provenance."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from faceperf.accuracy.references import read_reference, references_dir, weight_mismatches
from faceperf.artifacts.manifest import Manifest, read_manifest, write_manifest
from faceperf.errors import ArtifactError
from faceperf.fileio import atomic_write_json
from faceperf.weights.provenance import WeightSource

REAL = {
    "kind": "real",
    "file": "weights/real/retinaface_mobilenet0.25_Final.pth",
    "sha256": "2f" * 32,
    "committed": True,
}
PACKAGED = {
    "kind": "packaged",
    "package": "facenet-pytorch",
    "version": "2.6.0",
    "wheel_sha256": "a1" * 32,
    "file_sha256": "b2" * 32,
}
SURROGATE = {
    "kind": "surrogate",
    "seed": 0,
    "method": "RandomState(seed) init, BatchNorm statistics fitted on the fixtures",
    "fitted": True,
    "calibration_file": "fixtures/surrogates/star-seed0.npz",
    "calibration_sha256": "c3" * 32,
}
SURROGATE_LOCAL = {
    "kind": "surrogate",
    "seed": 4,
    "method": "RandomState(seed) init",
    "fitted": False,
    "calibration_file": "fixtures/surrogates/mtl-seed4.npz",
    "calibrated_on_this_machine": True,
}
DOCS = {"real": REAL, "packaged": PACKAGED, "surrogate": SURROGATE, "local": SURROGATE_LOCAL}


@pytest.mark.parametrize("doc", DOCS.values(), ids=DOCS.keys())
def test_the_json_round_trips_exactly_kind_first_in_its_order(doc):
    record = WeightSource.from_json(doc)
    assert record.to_json() == doc
    assert json.dumps(record.to_json()) == json.dumps(doc)  # the same keys in the same order
    assert WeightSource.from_json(record.to_json()) == record


def test_the_common_questions():
    real, packaged, surrogate = (WeightSource.from_json(d) for d in (REAL, PACKAGED, SURROGATE))
    assert [w.is_real for w in (real, packaged, surrogate)] == [True, False, False]
    assert [w.is_packaged for w in (real, packaged, surrogate)] == [False, True, False]
    assert [w.is_surrogate for w in (real, packaged, surrogate)] == [False, False, True]
    assert (real.file, real.sha256) == (REAL["file"], REAL["sha256"])
    assert (packaged.package, packaged.version, packaged.sha256) == (
        "facenet-pytorch",
        "2.6.0",
        None,
    )
    assert (surrogate.seed, surrogate.fitted, surrogate.sha256) == (0, True, None)
    assert [w.label() for w in (real, packaged, surrogate)] == [
        "real",
        "packaged",
        "fitted-surrogate(seed=0)",
    ]
    assert WeightSource.from_json(SURROGATE_LOCAL).label() == "surrogate(seed=4)"


def test_identity_is_the_kind_hashes_and_seed_not_the_wording():
    surrogate = WeightSource.from_json(SURROGATE)
    reworded = WeightSource.from_json({**SURROGATE, "method": "described differently"})
    assert reworded != surrogate and reworded.identity() == surrogate.identity()
    assert surrogate.identity() == {"kind": "surrogate", "seed": 0, "calibration_sha256": "c3" * 32}
    other_seed = WeightSource.from_json({**SURROGATE, "seed": 1})
    assert other_seed.identity() != surrogate.identity()


def test_the_record_is_frozen_and_its_detail_read_only():
    record = WeightSource.from_json(REAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.kind = "surrogate"
    with pytest.raises(TypeError):
        record.detail["sha256"] = "00" * 32
    given = {"file": "a.pth", "sha256": "ab"}
    built = WeightSource("real", given)
    given["sha256"] = "changed"  # the record keeps its own copy
    assert built.sha256 == "ab"


def test_malformed_records_are_refused():
    with pytest.raises(KeyError):
        WeightSource.from_json({"seed": 0})
    with pytest.raises(TypeError):
        WeightSource.from_json(["surrogate"])
    with pytest.raises(ValueError, match="kind"):
        WeightSource("real", {"kind": "surrogate"})


def test_the_record_is_read_through_its_properties_not_by_json_key():
    record = WeightSource.from_json({**REAL, "committed": True})
    assert (record.kind, record.sha256, record.committed, record.seed) == (
        "real",
        REAL["sha256"],
        True,
        None,
    )
    with pytest.raises(TypeError):
        record["kind"]


def _manifest_doc() -> dict:
    tensor = {"name": "input", "shape": ["batch", 3, 24, 24], "dtype": "float32"}
    variant = {
        "file": "m/baseline.onnx",
        "format": "onnx",
        "sha256": "d4" * 32,
        "size": 123,
        "precision": "float32",
        "converter": {"torch": "2.13.0"},
        "settings": {"opset": 17, "dynamic_axes": {"0": "batch"}},
        "inputs": [tensor],
        "outputs": [{**tensor, "name": "out"}],
    }
    models = {
        name: {
            "family": "mtcnn",
            "params": 6632,
            "weights": dict(weights),
            "fingerprint": "e5" * 32,
            "variants": {"baseline": variant},
        }
        for name, weights in (("retinaface", REAL), ("mtcnn_pnet", PACKAGED), ("star", SURROGATE))
    }
    return {"schema_version": 1, "tools": {"torch": "2.13.0"}, "models": models}


def test_a_manifest_reads_and_writes_byte_identically(tmp_path):
    source, copy = tmp_path / "source", tmp_path / "copy"
    source.mkdir()
    copy.mkdir()
    atomic_write_json(source / "manifest.json", _manifest_doc())
    manifest = read_manifest(source)
    assert isinstance(manifest.models["star"].weights, WeightSource)
    assert manifest.models["star"].weights.is_surrogate
    assert manifest.surrogate_models(["retinaface", "star", "absent"]) == ["star"]
    write_manifest(copy, manifest)
    assert (copy / "manifest.json").read_bytes() == (source / "manifest.json").read_bytes()


def test_a_manifest_entry_without_a_weights_kind_is_named_malformed(tmp_path):
    doc = _manifest_doc()
    del doc["models"]["star"]["weights"]["kind"]
    atomic_write_json(tmp_path / "manifest.json", doc)
    with pytest.raises(ArtifactError, match="malformed manifest entry"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("path", sorted(references_dir().glob("*.npz")), ids=lambda p: p.stem)
def test_the_committed_references_provenance_round_trips_byte_identically(path):
    with np.load(path, allow_pickle=False) as stored:
        raw = str(stored["provenance"])
    reference = read_reference(path.stem)
    provenance = json.loads(raw)
    for model, entry in provenance["models"].items():
        assert isinstance(reference.weights[model], WeightSource)
        entry["weights"] = reference.weights[model].to_json()
    # Written as build_reference writes it (sorted keys): the very bytes of the committed file.
    assert json.dumps(provenance, sort_keys=True) == raw


def test_references_and_manifest_compare_by_identity(tmp_path):
    atomic_write_json(tmp_path / "manifest.json", _manifest_doc())
    manifest = read_manifest(tmp_path)
    star = manifest.models["star"]
    reworded = WeightSource.from_json({**SURROGATE, "method": "described differently"})
    reference = read_reference("star")
    provenance = {**reference.provenance, "models": {"star": {"weights": reworded.to_json()}}}
    same = dataclasses.replace(reference, provenance=provenance)
    assert weight_mismatches(same, manifest) == []
    other = WeightSource.from_json({**SURROGATE, "seed": 3})
    models = {**manifest.models, "star": dataclasses.replace(star, weights=other)}
    assert weight_mismatches(same, Manifest(manifest.tools, models)) == [
        "star: references from surrogate seed 0, artifacts from surrogate seed 3"
    ]
