"""Choosing and loading the weights of each model: real, packaged, or surrogate."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path

import torch
from torch import nn

from faceperf.errors import WeightsError
from faceperf.fileio import sha256_path
from faceperf.models.registry import ModelSpec, WeightOrigin
from faceperf.paths import cache_dir, repo_root, weights_dir
from faceperf.weights import checkpoint
from faceperf.weights.provenance import WeightSource

DEFAULT_SEED = 0


class WeightPolicy(Enum):
    """Which weights the user wants.

    AUTO uses a real checkpoint when its file is in ``weights/`` (or committed with faceperf,
    ``weights/real/``) and a surrogate otherwise;
    REAL insists on real checkpoints (a missing file is an error, never a silent surrogate);
    SURROGATE ignores real checkpoints (for reproducible CI numbers).
    """

    AUTO = "auto"
    REAL = "real"
    SURROGATE = "surrogate"


@dataclass(frozen=True)
class ModelWeights:
    """A model's state dict and its provenance."""

    spec: ModelSpec
    state_dict: dict[str, torch.Tensor]
    source: WeightSource

    def build_model(self) -> nn.Module:
        """A fresh eval-mode module with these weights loaded strictly."""
        model = self.spec.build()
        checkpoint.load_into(model, self.state_dict, f"{self.spec.name} ({self.source.label()})")
        return model.eval()


def resolve_weights(
    spec: ModelSpec,
    policy: WeightPolicy = WeightPolicy.AUTO,
    directory: Path | None = None,
    seed: int = DEFAULT_SEED,
) -> ModelWeights:
    """Find the weights ``policy`` asks for, load them, and say where they came from."""
    if spec.origin is WeightOrigin.PACKAGED:
        return _packaged(spec)
    assert spec.checkpoint is not None
    found = None if policy is WeightPolicy.SURROGATE else real_checkpoint(spec, directory)
    if policy is WeightPolicy.SURROGATE or (policy is WeightPolicy.AUTO and found is None):
        from faceperf.weights.surrogates import surrogate_state_dict

        state, detail = surrogate_state_dict(spec, seed)
        return ModelWeights(spec, state, WeightSource("surrogate", detail))
    if found is None:
        path = (directory or weights_dir()) / spec.checkpoint.filename
        raise WeightsError(
            f"{path}: real weights were asked for (--weights real) but the checkpoint "
            f"{spec.checkpoint.filename} is not there; put it in {path.parent} "
            "or use --weights auto"
        )
    state = checkpoint.unwrap_state_dict(
        checkpoint.read_checkpoint(found.path), spec.checkpoint.container, found.path
    )
    detail = {"file": spec.checkpoint.filename, "sha256": found.sha256}
    if found.committed:
        committed_file = str(found.path.relative_to(repo_root()))
        detail = {"file": committed_file, "sha256": found.sha256, "committed": True}
    weights = ModelWeights(spec, state, WeightSource("real", detail))
    checkpoint.load_into(spec.build(), state, str(found.path))  # fail here, naming the file
    return weights


@dataclass(frozen=True)
class RealCheckpoint:
    """The real checkpoint file a build reads."""

    path: Path
    sha256: str
    committed: bool  # faceperf's own copy in weights/real/, not the user's


def real_checkpoint(spec: ModelSpec, directory: Path | None = None) -> RealCheckpoint | None:
    """The real checkpoint a build of ``spec`` uses, or None when there is none.

    The user's file in ``directory`` (default ``weights/``) comes first, then the trained
    weights committed with faceperf, whose sha256 must be the pinned one.
    """
    assert spec.checkpoint is not None
    user = (directory or weights_dir()) / spec.checkpoint.filename
    if user.exists():
        return RealCheckpoint(user, _file_digest(user), committed=False)
    committed = spec.checkpoint.committed
    if committed is None:
        return None
    path = repo_root() / committed.path
    if not path.exists():
        return None
    digest = _file_digest(path)
    if digest != committed.sha256:
        raise WeightsError(
            f"{path}: sha256 {digest[:12]}... is not the committed {committed.sha256[:12]}...; "
            "restore it with git checkout, or drop your own file in weights/"
        )
    return RealCheckpoint(path, digest, committed=True)


def _file_digest(path: Path) -> str:
    """The file's sha256, computed once per process while its size and mtime stay (the
    staleness check and the build both ask for it)."""
    stat = path.stat()
    return _digest(path.resolve(), stat.st_size, stat.st_mtime_ns)


@cache
def _digest(path: Path, size: int, mtime_ns: int) -> str:
    return sha256_path(path)


def _packaged(spec: ModelSpec) -> ModelWeights:
    packaged = _packaged_mtcnn(cache_dir())
    detail = {
        "package": packaged.package,
        "version": packaged.version,
        "wheel_sha256": packaged.wheel_sha256,
        "file_sha256": packaged.file_sha256[spec.name],
    }
    return ModelWeights(spec, packaged.state_dicts[spec.name], WeightSource("packaged", detail))


@cache
def _packaged_mtcnn(directory: Path):
    from faceperf.weights.packaged import load_mtcnn_state_dicts

    return load_mtcnn_state_dicts(directory)


def weights_identity(
    spec: ModelSpec,
    policy: WeightPolicy = WeightPolicy.AUTO,
    directory: Path | None = None,
    seed: int = DEFAULT_SEED,
) -> dict:
    """What identifies the weights ``resolve_weights`` would return, without loading them.

    Cheap enough to decide whether built artifacts are stale.
    """
    if spec.origin is WeightOrigin.PACKAGED:
        from faceperf.weights.packaged import FACENET_WHEEL_SHA256

        return {"kind": "packaged", "wheel_sha256": FACENET_WHEEL_SHA256}
    assert spec.checkpoint is not None
    found = real_checkpoint(spec, directory) if policy is not WeightPolicy.SURROGATE else None
    if policy is WeightPolicy.REAL or (policy is WeightPolicy.AUTO and found is not None):
        return {"kind": "real", "sha256": found.sha256 if found else None}
    from faceperf.weights.surrogates import calibration_path

    calibration = calibration_path(spec, seed)
    return {
        "kind": "surrogate",
        "seed": seed,
        "calibration_sha256": sha256_path(calibration) if calibration.exists() else None,
    }
