"""Real checkpoints in each container format load strictly; bad ones fail with one clear line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from faceperf.errors import WeightsError
from faceperf.fileio import sha256_path
from faceperf.models.registry import Container, default_registry
from faceperf.paths import repo_root
from faceperf.weights.checkpoint import load_into, read_checkpoint, unwrap_state_dict
from faceperf.weights.sources import WeightPolicy, resolve_weights, weights_identity


def _seeded_state(name: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = default_registry()[name].build()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    return model.state_dict()


def _save_as_released(name: str, directory: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """Save a checkpoint in the container the real release uses."""
    spec = default_registry()[name]
    state = _seeded_state(name)
    if name == "star":
        obj = {"net": state, "epoch": 120}
    elif name == "retinaface":
        obj = {"state_dict": {f"module.{k}": v for k, v in state.items()}}
    else:
        obj = state
    path = directory / spec.checkpoint.filename
    torch.save(obj, path)
    return path, state


@pytest.mark.parametrize("name", ["star", "retinaface", "mtl"])
def test_real_checkpoint_container_loads_strictly_and_round_trips(name, tmp_path):
    path, state = _save_as_released(name, tmp_path)
    weights = resolve_weights(default_registry()[name], WeightPolicy.REAL, tmp_path)
    assert weights.source.kind == "real"
    assert weights.source.detail == {"file": path.name, "sha256": sha256_path(path)}
    loaded = weights.build_model().state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_retinaface_checkpoint_without_wrapper_or_prefix_also_loads(tmp_path):
    state = _seeded_state("retinaface")
    torch.save(state, tmp_path / "Alignment_RetinaFace.pth")
    spec = default_registry()["retinaface"]
    weights = resolve_weights(spec, WeightPolicy.REAL, tmp_path)
    key = "body.stage1.0.0.weight"
    assert torch.equal(weights.state_dict[key], state[key])


def test_missing_real_checkpoint_is_an_error_when_real_weights_are_asked_for(tmp_path):
    spec = default_registry()["star"]
    with pytest.raises(WeightsError, match=r"Landmark_98\.pkl.*--weights real.*not there"):
        resolve_weights(spec, WeightPolicy.REAL, tmp_path)


def test_missing_real_checkpoint_falls_back_to_a_labelled_surrogate_in_auto_mode(tmp_path):
    weights = resolve_weights(default_registry()["mtl"], WeightPolicy.AUTO, tmp_path)
    assert weights.source.kind == "surrogate"
    assert weights.source.label() == "surrogate(seed=0)"


def test_retinaface_without_a_user_checkpoint_uses_the_committed_trained_weights(tmp_path):
    spec = default_registry()["retinaface"]
    weights = resolve_weights(spec, WeightPolicy.AUTO, tmp_path)
    committed = spec.checkpoint.committed
    assert weights.source.to_json() == {
        "kind": "real",
        "file": committed.path,
        "sha256": committed.sha256,
        "committed": True,
    }
    assert weights_identity(spec, WeightPolicy.AUTO, tmp_path)["sha256"] == committed.sha256
    # --weights real is satisfied by them too; --weights surrogate still gives the surrogate.
    assert resolve_weights(spec, WeightPolicy.REAL, tmp_path).source.kind == "real"
    assert resolve_weights(spec, WeightPolicy.SURROGATE, tmp_path).source.kind == "surrogate"


def test_a_tampered_committed_checkpoint_is_refused_naming_it(tmp_path, monkeypatch):
    spec = default_registry()["retinaface"]
    tampered = tmp_path / spec.checkpoint.committed.path
    tampered.parent.mkdir(parents=True)
    original = repo_root() / spec.checkpoint.committed.path
    tampered.write_bytes(original.read_bytes()[:-1] + b"x")
    monkeypatch.setenv("FACEPERF_ROOT", str(tmp_path))
    with pytest.raises(WeightsError, match=r"_Final\.pth: sha256 .* is not the committed"):
        resolve_weights(spec, WeightPolicy.AUTO, tmp_path / "weights")


def test_present_real_checkpoint_wins_over_the_surrogate_in_auto_mode(tmp_path):
    _save_as_released("retinaface", tmp_path)
    weights = resolve_weights(default_registry()["retinaface"], WeightPolicy.AUTO, tmp_path)
    assert weights.source.kind == "real"
    assert weights.source.detail["file"] == "Alignment_RetinaFace.pth"  # the user's, not ours
    assert "committed" not in weights.source.detail


def test_truncated_checkpoint_is_reported_as_corrupt(tmp_path):
    path, _ = _save_as_released("retinaface", tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError, match=r"Alignment_RetinaFace\.pth: not a readable PyTorch"):
        resolve_weights(default_registry()["retinaface"], WeightPolicy.REAL, tmp_path)


def test_garbage_file_is_reported_as_corrupt(tmp_path):
    path = tmp_path / "MTL_backbone.pth"
    path.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        read_checkpoint(path)


class _RunsCode:
    """Unpickling this calls os.mkdir: a stand-in for a malicious checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "Landmark_98.pkl"
    torch.save({"net": {"w": torch.zeros(1)}, "payload": _RunsCode(marker)}, path)
    with pytest.raises(WeightsError, match=r"Landmark_98\.pkl: refused to load.*weights_only"):
        read_checkpoint(path)
    assert not marker.exists()
    # The payload is real: unrestricted unpickling runs it (harmless here: it makes a folder).
    torch.load(path, weights_only=False)
    assert marker.is_dir()


def test_state_dict_with_missing_and_extra_keys_names_them(tmp_path):
    state = _seeded_state("mtl")
    del state["fc_gaze.weight"]
    state["fc_pose.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "MTL_backbone.pth")
    with pytest.raises(WeightsError) as caught:
        resolve_weights(default_registry()["mtl"], WeightPolicy.REAL, tmp_path)
    message = str(caught.value)
    assert "MTL_backbone.pth" in message and "\n" not in message
    assert "missing keys: fc_gaze.weight" in message
    assert "unexpected keys: fc_pose.weight" in message


def test_state_dict_with_a_wrong_shape_names_the_key_and_both_shapes():
    model = default_registry()["mtcnn_pnet"].build()
    state = model.state_dict()
    state["conv1.weight"] = torch.zeros(10, 3, 5, 5)
    with pytest.raises(WeightsError, match=r"conv1\.weight \(10, 3, 5, 5\) != \(10, 3, 3, 3\)"):
        load_into(model, state, "pnet.pt")


def test_star_checkpoint_without_its_net_key_is_rejected_clearly(tmp_path):
    path = tmp_path / "Landmark_98.pkl"
    torch.save(_seeded_state("star"), path)
    with pytest.raises(WeightsError, match="expected a dict with key 'net'"):
        unwrap_state_dict(read_checkpoint(path), Container(key="net"), path)
