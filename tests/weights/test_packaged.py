"""Real MTCNN weights from the pinned facenet-pytorch wheel: integrity, refusal, behaviour.

Uses the real default cache; the first run downloads the 1.9 MB wheel with pip, later runs
reuse it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from onnx_session import export_session
from torch import nn

from faceperf import paths
from faceperf.errors import WeightsError
from faceperf.models.mtcnn import (
    MTCNN_PARAMS,
    ONET_OUTPUTS,
    PNET_OUTPUTS,
    RNET_OUTPUTS,
    build_onet,
    build_pnet,
    build_rnet,
)
from faceperf.weights import packaged
from faceperf.weights.packaged import (
    FACENET_WHEEL_NAME,
    FACENET_WHEEL_SHA256,
    MTCNN_FILE_SHA256,
    MTCNN_MEMBERS,
    PackagedWeights,
    fetch_facenet_wheel,
    load_mtcnn_state_dicts,
    read_mtcnn_state_dicts,
)

FIXTURES = paths.fixtures_dir()
BUILDERS = {"mtcnn_pnet": build_pnet, "mtcnn_rnet": build_rnet, "mtcnn_onet": build_onet}


@pytest.fixture(scope="module")
def weights() -> PackagedWeights:
    return load_mtcnn_state_dicts(paths.cache_dir())


@pytest.fixture(scope="module")
def nets(weights: PackagedWeights) -> dict[str, nn.Module]:
    out = {}
    for key, build in BUILDERS.items():
        net = build()
        net.load_state_dict(weights.state_dicts[key], strict=True)
        out[key] = net
    return out


@pytest.fixture(scope="module")
def hopper() -> tuple[np.ndarray, dict]:
    """Grace Hopper as float32 RGB, and facenet-pytorch's detection of her face."""
    ref = json.loads((FIXTURES / "external" / "facenet_mtcnn.json").read_text())
    entry = ref["images"]["grace_hopper"]
    bgr = cv2.imread(str(FIXTURES / "images" / entry["file"]), cv2.IMREAD_COLOR)
    assert bgr is not None
    # Float before resizing: resizing uint8 first is a known fault the suite must not copy.
    rgb = np.ascontiguousarray(bgr.astype(np.float32)[:, :, ::-1])
    return rgb, entry["faces"][0]


def _to_input(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float RGB in [0, 255] -> (1, 3, H, W) MTCNN-normalised."""
    x = (rgb - 127.5) * 0.0078125
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def _face_crop(rgb: np.ndarray, box: list[float], size: int) -> torch.Tensor:
    x1, y1, x2, y2 = (round(v) for v in box)
    crop = rgb[y1:y2, x1:x2]
    return _to_input(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))


def _noise_crop(size: int) -> torch.Tensor:
    rng = np.random.default_rng(1234)
    return _to_input(rng.uniform(0, 255, (size, size, 3)).astype(np.float32))


def _face_prob(net: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        prob = net(x)[-1]  # prob is the last output of every net
    return float(prob.reshape(-1, 2)[0, 1])


# ---- provenance and strict loading -----------------------------------------------------------


def test_cached_wheel_and_files_match_pins(weights: PackagedWeights) -> None:
    wheel = paths.cache_dir() / FACENET_WHEEL_NAME
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == FACENET_WHEEL_SHA256
    assert weights.wheel_sha256 == FACENET_WHEEL_SHA256
    assert (weights.package, weights.version) == ("facenet-pytorch", "2.6.0")
    assert weights.file_sha256 == MTCNN_FILE_SHA256
    assert set(weights.state_dicts) == set(MTCNN_PARAMS)
    with zipfile.ZipFile(wheel) as zf:
        for key, member in MTCNN_MEMBERS.items():
            assert hashlib.sha256(zf.read(member)).hexdigest() == weights.file_sha256[key]


def test_fetch_reuses_a_valid_cached_wheel(tmp_path: Path, monkeypatch) -> None:
    shutil.copy(paths.cache_dir() / FACENET_WHEEL_NAME, tmp_path / FACENET_WHEEL_NAME)
    # A cache hit must not run pip at all: a broken interpreter path proves it.
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert fetch_facenet_wheel(tmp_path) == tmp_path / FACENET_WHEEL_NAME


@pytest.mark.parametrize("key", list(BUILDERS))
def test_state_dicts_load_strictly_with_pinned_sizes(weights: PackagedWeights, key: str) -> None:
    sd = weights.state_dicts[key]
    assert all(v.dtype == torch.float32 for v in sd.values())
    assert sum(v.numel() for v in sd.values()) == MTCNN_PARAMS[key]
    result = BUILDERS[key]().load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_default_cache_dir_honours_env(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FACEPERF_CACHE", str(tmp_path))
    assert paths.cache_dir() == tmp_path
    monkeypatch.delenv("FACEPERF_CACHE")
    assert paths.cache_dir() == paths.repo_root() / "weights" / ".cache"


# ---- refusal ---------------------------------------------------------------------------------


def _rebuild_wheel(dst: Path, replace: dict[str, bytes]) -> Path:
    """Copy the cached wheel member by member, swapping in the given member contents."""
    with (
        zipfile.ZipFile(paths.cache_dir() / FACENET_WHEEL_NAME) as src,
        zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for info in src.infolist():
            out.writestr(info, replace.get(info.filename, src.read(info.filename)))
    return dst


def test_corrupted_wheel_is_refused_naming_the_file(tmp_path: Path) -> None:
    data = bytearray((paths.cache_dir() / FACENET_WHEEL_NAME).read_bytes())
    mid = len(data) // 2
    data[mid : mid + 16] = bytes(b ^ 0xFF for b in data[mid : mid + 16])
    bad = tmp_path / FACENET_WHEEL_NAME
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256") as err:
        read_mtcnn_state_dicts(bad)
    assert str(bad) in str(err.value)
    assert "\n" not in str(err.value)


def test_corrupted_cached_wheel_is_replaced_by_a_fresh_download(tmp_path: Path) -> None:
    bad = tmp_path / FACENET_WHEEL_NAME
    bad.write_bytes(b"not a wheel")
    assert fetch_facenet_wheel(tmp_path) == bad
    assert hashlib.sha256(bad.read_bytes()).hexdigest() == FACENET_WHEEL_SHA256
    # The download directory is temporary and lives beside the target (atomic rename).
    assert sorted(p.name for p in tmp_path.iterdir()) == [FACENET_WHEEL_NAME]


def test_download_with_wrong_hash_is_refused_and_not_cached(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(packaged, "FACENET_WHEEL_SHA256", "0" * 64)
    with pytest.raises(WeightsError, match=r"expected 0{64}") as err:
        fetch_facenet_wheel(tmp_path)
    assert FACENET_WHEEL_NAME in str(err.value) and str(tmp_path) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_pip_failure_says_how_to_place_the_wheel_by_hand(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "executable", shutil.which("false") or "/bin/false")
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError) as err:
        fetch_facenet_wheel(cache)
    msg = str(err.value)
    assert FACENET_WHEEL_NAME in msg and str(cache) in msg and "by hand" in msg
    assert "\n" not in msg
    assert not (cache / FACENET_WHEEL_NAME).exists()


def test_truncated_weight_file_is_refused_by_hash(tmp_path: Path) -> None:
    member = MTCNN_MEMBERS["mtcnn_onet"]
    with zipfile.ZipFile(paths.cache_dir() / FACENET_WHEEL_NAME) as zf:
        truncated = zf.read(member)[:50_000]
    rebuilt = _rebuild_wheel(tmp_path / "rebuilt.whl", {member: truncated})
    with pytest.raises(WeightsError, match="sha256") as err:
        read_mtcnn_state_dicts(rebuilt, wheel_sha256=None)
    assert member in str(err.value) and str(rebuilt) in str(err.value)


def test_truncated_weight_file_is_refused_at_load_even_if_repinned(
    tmp_path: Path, monkeypatch
) -> None:
    # Second line of defence: a wrong pin must still not let a broken pickle through silently.
    member = MTCNN_MEMBERS["mtcnn_onet"]
    with zipfile.ZipFile(paths.cache_dir() / FACENET_WHEEL_NAME) as zf:
        truncated = zf.read(member)[:50_000]
    monkeypatch.setitem(
        packaged.MTCNN_FILE_SHA256, "mtcnn_onet", hashlib.sha256(truncated).hexdigest()
    )
    rebuilt = _rebuild_wheel(tmp_path / "rebuilt.whl", {member: truncated})
    with pytest.raises(WeightsError, match="could not be loaded with weights_only=True") as err:
        read_mtcnn_state_dicts(rebuilt, wheel_sha256=None)
    assert member in str(err.value)


def test_pickle_with_code_references_is_refused(tmp_path: Path, monkeypatch) -> None:
    # weights_only=True must refuse globals outside the tensor allow-list (no code execution).
    buf = io.BytesIO()
    torch.save({"conv1.weight": torch.zeros(1), "hook": os.getcwd}, buf)
    member = MTCNN_MEMBERS["mtcnn_pnet"]
    data = buf.getvalue()
    monkeypatch.setitem(packaged.MTCNN_FILE_SHA256, "mtcnn_pnet", hashlib.sha256(data).hexdigest())
    rebuilt = _rebuild_wheel(tmp_path / "evil.whl", {member: data})
    with pytest.raises(WeightsError, match="weights_only=True"):
        read_mtcnn_state_dicts(rebuilt, wheel_sha256=None)


def test_missing_wheel_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=re.escape(FACENET_WHEEL_NAME)):
        read_mtcnn_state_dicts(tmp_path / "absent.whl")


# ---- behaviour with the real weights ---------------------------------------------------------

# (net, input size, minimum face prob on the Hopper crop). P-Net is a coarse 12-pixel proposer
# whose own pipeline threshold is 0.6; R-Net and O-Net are confident on a clean frontal face.
CASES = [("mtcnn_pnet", 12, 0.6), ("mtcnn_rnet", 24, 0.9), ("mtcnn_onet", 48, 0.9)]


@pytest.mark.parametrize(("key", "size", "min_prob"), CASES)
def test_real_weights_score_the_reference_face(nets, hopper, key, size, min_prob) -> None:
    rgb, face = hopper
    assert _face_prob(nets[key], _face_crop(rgb, face["box"], size)) > min_prob


@pytest.mark.parametrize(("key", "size"), [("mtcnn_rnet", 24), ("mtcnn_onet", 48)])
def test_real_weights_reject_noise(nets, key: str, size: int) -> None:
    assert _face_prob(nets[key], _noise_crop(size)) < 0.5


def test_onet_landmarks_agree_with_facenet_reference(nets, hopper) -> None:
    # On facenet's own final box, O-Net's landmarks (fractions of the box: 5 x, then 5 y) land
    # within 10 % of the inter-ocular distance of facenet's (measured 3.4 px of 88 px). A plain
    # (C, H, W) flatten instead of Caffe's (W, H, C) puts them ~19 px off.
    rgb, face = hopper
    x1, y1, x2, y2 = face["box"]
    with torch.no_grad():
        _, lm, _ = nets["mtcnn_onet"](_face_crop(rgb, face["box"], 48))
    lm = lm[0].numpy().astype(np.float64)
    got = np.stack([x1 + lm[:5] * (x2 - x1), y1 + lm[5:] * (y2 - y1)], axis=1)
    want = np.asarray(face["landmarks"])
    iod = np.linalg.norm(want[0] - want[1])
    assert np.abs(got - want).max() < 0.1 * iod


# ---- ONNX Runtime parity with the real weights -----------------------------------------------

# FP32 on both sides with identical op sequences; conv/gemm summation order is the only
# difference, a few ulp on values of magnitude <= ~10 (measured max 1.3e-6 on P-Net's
# probabilities, 1.2e-7 on R/O-Net). 1e-5 leaves headroom across CPUs yet is far below anything
# that moves a 0.6/0.7 threshold decision or a box by a visible fraction of a pixel.
ORT_ATOL = 1e-5


@pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning")
@pytest.mark.parametrize("key", list(BUILDERS))
def test_onnx_runtime_matches_eager_with_real_weights(nets, hopper, key, tmp_path) -> None:
    rgb, face = hopper
    net = nets[key]
    if key == "mtcnn_pnet":
        names = PNET_OUTPUTS
        dyn = {n: {0: "batch", 2: "height", 3: "width"} for n in ("image", *names)}
        # One pyramid level of the real image (scale 0.2), as the detector would feed it.
        level = cv2.resize(rgb, (102, 120), interpolation=cv2.INTER_AREA)
        x_export, x_run = torch.zeros(1, 3, 12, 12), _to_input(level)
    else:
        size = 24 if key == "mtcnn_rnet" else 48
        names = RNET_OUTPUTS if key == "mtcnn_rnet" else ONET_OUTPUTS
        dyn = {n: {0: "batch"} for n in ("image", *names)}
        x_export = torch.zeros(1, 3, size, size)
        x_run = torch.cat([_face_crop(rgb, face["box"], size), _noise_crop(size)])
    path = tmp_path / f"{key}.onnx"
    sess = export_session(net, x_export, path, names, dyn)
    got = sess.run(list(names), {"image": x_run.numpy()})
    with torch.no_grad():
        want = net(x_run)
    for name, a, b in zip(names, got, want, strict=True):
        np.testing.assert_allclose(a, b.numpy(), rtol=0, atol=ORT_ATOL, err_msg=name)
