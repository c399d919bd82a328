"""Surrogate weights: deterministic, portable, realistic enough to measure with, and labelled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceperf.fixtures.samples import retinaface_faces, sample_batch
from faceperf.models.registry import default_registry
from faceperf.weights import surrogates
from faceperf.weights.seeded import FP16_MAX, activation_peak, init_surrogate
from faceperf.weights.sources import WeightPolicy, resolve_weights

SURROGATE_MODELS = ["retinaface", "star", "mtl"]


def _surrogate(name: str) -> torch.nn.Module:
    spec = default_registry()[name]
    return resolve_weights(spec, WeightPolicy.SURROGATE).build_model()


def _outputs(name: str, rows: slice = slice(None)) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return _surrogate(name)(torch.from_numpy(np.array(sample_batch(name)[rows])))


@pytest.mark.parametrize("name", ["retinaface", "mtl"])
def test_surrogate_is_bit_identical_on_every_build(name):
    spec = default_registry()[name]
    first = surrogates.surrogate_state_dict(spec, 0)[0]
    second = surrogates.surrogate_state_dict(spec, 0)[0]
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_random_part_depends_on_seed_and_tensor_name_only():
    spec = default_registry()["mtcnn_rnet"]
    a, b, c = spec.build(), spec.build(), spec.build()
    init_surrogate(a, 0)
    init_surrogate(b, 0)
    init_surrogate(c, 1)
    assert torch.equal(a.conv1.weight, b.conv1.weight)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    assert not torch.equal(a.conv1.weight.flatten()[:10], a.conv2.weight.flatten()[:10])


@pytest.mark.parametrize("name", SURROGATE_MODELS)
def test_committed_calibration_matches_what_the_code_computes_now(name):
    # The committed file makes surrogates bit-identical across machines; this catches a change
    # to the calibration code that was not followed by `faceperf surrogates calibrate`.
    spec = default_registry()[name]
    stored = surrogates._read_calibration(surrogates.calibration_path(spec, 0), spec.build())
    assert stored is not None, f"run `faceperf surrogates calibrate --models {name}`"
    model = spec.build()
    init_surrogate(model, 0)
    surrogates.calibrate(spec, model)
    fresh = model.state_dict()
    for key, value in stored.items():
        np.testing.assert_allclose(value, fresh[key].numpy(), rtol=1e-3, atol=1e-5, err_msg=key)


def test_surrogate_is_labelled_in_its_provenance():
    spec = default_registry()["mtl"]
    weights = resolve_weights(spec, WeightPolicy.SURROGATE)
    detail = weights.source.to_json()
    assert detail["kind"] == "surrogate" and detail["seed"] == 0
    assert detail["calibration_file"] == "fixtures/surrogates/mtl-seed0.npz"
    assert "RandomState" in detail["method"]


def test_calibration_written_for_another_architecture_is_recomputed(tmp_path, monkeypatch):
    spec = default_registry()["retinaface"]
    stale = tmp_path / "retinaface-seed0.npz"
    np.savez(stale, __format__=np.array(1), **{"body.stage1.0.1.running_var": np.ones(5)})
    monkeypatch.setattr(surrogates, "calibration_path", lambda *_: stale)
    state, detail = surrogates.surrogate_state_dict(spec, 0)
    assert detail["calibrated_on_this_machine"] is True
    assert state["body.stage1.0.1.running_var"].shape == (8,)


@pytest.mark.parametrize("name", SURROGATE_MODELS)
def test_activations_stay_well_inside_fp16_range_on_the_fixture_faces(name):
    batch = torch.from_numpy(np.array(sample_batch(name)[:2]))
    assert activation_peak(_surrogate(name), batch) < FP16_MAX / surrogates.FP16_HEADROOM


def test_retinaface_surrogate_finds_a_handful_of_candidates_not_thousands():
    _, conf, _ = _outputs("retinaface")
    confident = (conf[..., 1] > 0.5).sum(1)
    assert len(retinaface_faces()[1]) == len(confident) == 8
    assert confident.min() >= 1 and confident.max() <= 100, confident.tolist()
    assert (conf[..., 1] > 0.02).sum(1).max() < 1000


def test_star_surrogate_landmarks_spread_over_the_crop_and_follow_the_input():
    (points,) = _outputs("star", slice(0, 3))
    spread = points.std(dim=1)  # per face, over its 98 points
    assert (spread > 0.1).all(), spread
    assert points.abs().max() <= 1.0
    assert (points[0] - points[1]).abs().max() > 0.05


def test_mtl_surrogate_outputs_follow_the_input():
    emotion, gaze, au = _outputs("mtl", slice(0, 3))
    for value in (emotion, gaze, au):
        assert (value[0] - value[1]).abs().max() > 1e-3
    assert au.min() >= -1 and au.max() <= 1
