"""Building each family's surrogate, and the committed calibration that makes it portable.

The random part of a surrogate is bit-exact on every machine (legacy RandomState). The calibrated
part (BatchNorm statistics, RetinaFace's score bias) comes from float forward passes whose last
bits depend on the CPU's kernels; so it is computed once by ``faceperf surrogates calibrate`` and
committed under ``fixtures/surrogates/``. Every machine, the Apple runner included, then builds
bit-identical surrogate weights, and artifacts and reference outputs agree across machines.
A missing or stale calibration file is recomputed on the fly and the manifest says so.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceperf.errors import WeightsError
from faceperf.fileio import atomic_write_bytes, sha256_path
from faceperf.fixtures.samples import sample_batch
from faceperf.models.registry import ModelSpec
from faceperf.paths import fixtures_dir
from faceperf.weights.seeded import (
    FP16_MAX,
    activation_peak,
    calibrate_batchnorm,
    init_surrogate,
)

# Activations must stay this far below FP16's maximum so FP16 artifacts are a fair test.
FP16_HEADROOM = 16.0
# RetinaFace surrogate: about this many anchors per image score above 0.5 on the fixtures.
RETINAFACE_ANCHORS_ABOVE_HALF = 12
_MEDIAN_MARGIN = 8.0
_CALIBRATION_FORMAT = 1


def calibration_path(spec: ModelSpec, seed: int) -> Path:
    return fixtures_dir() / "surrogates" / f"{spec.name}-seed{seed}.npz"


def surrogate_state_dict(spec: ModelSpec, seed: int) -> tuple[dict[str, torch.Tensor], dict]:
    """The surrogate's state dict and its manifest record."""
    model = spec.build()
    init_surrogate(model, seed)
    path = calibration_path(spec, seed)
    stored = _read_calibration(path, model)
    if stored is not None:
        _apply(model, stored)
        origin = {
            "calibration_file": str(path.relative_to(fixtures_dir().parent)),
            "calibration_sha256": sha256_path(path),
        }
    else:
        calibrate(spec, model)
        origin = {"calibration_file": None, "calibrated_on_this_machine": True}
    detail = {
        "seed": seed,
        "method": f"seeded RandomState + {_METHODS[spec.family]}",
        "fitted": False,
        **origin,
    }
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, detail


def calibrate(spec: ModelSpec, model: nn.Module) -> None:
    """Calibrate a freshly initialised surrogate in place on the fixture faces."""
    batch = _CALIBRATORS[spec.family](model)
    peak = activation_peak(model, batch[:2])
    if not peak < FP16_MAX / FP16_HEADROOM:
        raise WeightsError(
            f"{spec.name} surrogate: activations reach {peak:.3g}, above the FP16 limit "
            f"{FP16_MAX:.0f}/{FP16_HEADROOM:.0f}; the surrogate would make FP16 artifacts unfair"
        )


def write_calibration(spec: ModelSpec, seed: int) -> Path:
    """Recompute the calibration of ``spec``'s surrogate and store it atomically."""
    model = spec.build()
    init_surrogate(model, seed)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    calibrate(spec, model)
    changed = {
        k: v.numpy() for k, v in model.state_dict().items() if not torch.equal(v, reference[k])
    }
    changed["__format__"] = np.array(_CALIBRATION_FORMAT)
    path = calibration_path(spec, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **changed)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _read_calibration(path: Path, model: nn.Module) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    with np.load(path) as data:
        stored = {k: data[k] for k in data.files}
    if int(stored.pop("__format__", -1)) != _CALIBRATION_FORMAT:
        return None
    expected = model.state_dict()
    for key, value in stored.items():
        if key not in expected or tuple(expected[key].shape) != value.shape:
            return None  # written for another architecture version: recompute
    return stored


def _apply(model: nn.Module, stored: dict[str, np.ndarray]) -> None:
    state = model.state_dict()
    with torch.no_grad():
        for key, value in stored.items():
            state[key].copy_(torch.from_numpy(value))


def _calibrate_batchnorm_on_samples(model: nn.Module, name: str) -> torch.Tensor:
    batch = torch.from_numpy(np.array(sample_batch(name)))
    calibrate_batchnorm(model, [batch])
    return batch


def _calibrate_retinaface(model: nn.Module) -> torch.Tensor:
    batch = _calibrate_batchnorm_on_samples(model, "retinaface")
    _calibrate_face_bias(model, batch)
    return batch


def _calibrate_face_bias(model: nn.Module, batch: torch.Tensor) -> None:
    """Rescale the face-vs-background margin so few anchors score high and most score ~0.

    Random heads score every anchor near 0.5, which would "find" thousands of faces and make
    NMS and every downstream stage unrealistically slow. After this, about
    RETINAFACE_ANCHORS_ABOVE_HALF anchors per image score above 0.5 and the median anchor
    scores sigmoid(-MEDIAN_MARGIN), well under the 0.02 candidate threshold.
    """
    with torch.no_grad():
        feats = model.features(batch)
        for head, feat in zip(model.ClassHead, feats, strict=True):
            conv = head.conv1x1
            logits = head(feat)
            margin = (logits[..., 1] - logits[..., 0]).flatten()
            # Split the per-image budget evenly over the three levels.
            keep = max(1, RETINAFACE_ANCHORS_ABOVE_HALF * len(batch) // 3)
            threshold = margin.topk(min(keep, margin.numel())).values[-1]
            gain = _MEDIAN_MARGIN / float(threshold - margin.median())
            weight = conv.weight.view(-1, 2, *conv.weight.shape[1:])
            bias = conv.bias.view(-1, 2)
            weight[:, 1] = weight[:, 0] + gain * (weight[:, 1] - weight[:, 0])
            bias[:, 1] = bias[:, 0] + gain * (bias[:, 1] - bias[:, 0] - threshold)


_CALIBRATORS = {
    "retinaface": _calibrate_retinaface,
    "star": lambda model: _calibrate_batchnorm_on_samples(model, "star"),
    "mtl": lambda model: _calibrate_batchnorm_on_samples(model, "mtl"),
}
_METHODS = {
    "retinaface": (
        "BatchNorm calibrated on the fixture images, face margin rescaled to ~12 anchors > 0.5"
    ),
    "star": "BatchNorm calibrated on the fixture face crops",
    "mtl": "BatchNorm calibrated on the fixture face crops",
}
