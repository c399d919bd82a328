"""Real MTCNN weights, read out of the facenet-pytorch 2.6.0 wheel without installing it.

The wheel depends on torchvision, which faceperf must not pull in, so the wheel file is
fetched with ``pip download --no-deps`` and the three state dicts are read from inside it.
Both the wheel and each weight file are pinned by sha256.

Cache location: ``$FACEPERF_CACHE`` if set, else ``<repo>/weights/.cache`` (this assumes a
source checkout; set ``FACEPERF_CACHE`` when faceperf is installed elsewhere). To work offline,
put ``facenet_pytorch-2.6.0-py3-none-any.whl`` in that directory by hand.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from faceperf import paths
from faceperf.errors import WeightsError
from faceperf.fileio import sha256_path

FACENET_PACKAGE = "facenet-pytorch"
FACENET_VERSION = "2.6.0"
FACENET_WHEEL_NAME = "facenet_pytorch-2.6.0-py3-none-any.whl"
FACENET_WHEEL_SHA256 = "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca"

# Model key -> path of its state dict inside the wheel.
MTCNN_MEMBERS: dict[str, str] = {
    "mtcnn_pnet": "facenet_pytorch/data/pnet.pt",
    "mtcnn_rnet": "facenet_pytorch/data/rnet.pt",
    "mtcnn_onet": "facenet_pytorch/data/onet.pt",
}
MTCNN_FILE_SHA256: dict[str, str] = {
    "mtcnn_pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "mtcnn_rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "mtcnn_onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}

_PIP_TIMEOUT_S = 300


@dataclass(frozen=True)
class PackagedWeights:
    """State dicts read from a pinned package, with the hashes that vouch for them."""

    state_dicts: dict[str, dict[str, Tensor]]
    package: str
    version: str
    wheel_sha256: str
    file_sha256: dict[str, str]


def _by_hand_hint(cache_dir: Path) -> str:
    return f"place {FACENET_WHEEL_NAME} (sha256 {FACENET_WHEEL_SHA256}) in {cache_dir} by hand"


def fetch_facenet_wheel(cache_dir: Path) -> Path:
    """Return the cached facenet-pytorch wheel, downloading it with pip if needed.

    A cached file whose hash does not match is replaced by a fresh download.

    Args:
        cache_dir: directory holding the wheel; created if missing.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / FACENET_WHEEL_NAME
    if target.is_file() and sha256_path(target) == FACENET_WHEEL_SHA256:
        return target

    cache_dir.mkdir(parents=True, exist_ok=True)
    # Download inside cache_dir so the final os.replace stays on one filesystem (atomic).
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache_dir) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"{FACENET_PACKAGE}=={FACENET_VERSION}",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            tmp,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WeightsError(
                f"pip download of {FACENET_PACKAGE}=={FACENET_VERSION} failed ({exc}); "
                f"{_by_hand_hint(cache_dir)}"
            ) from exc
        downloaded = Path(tmp) / FACENET_WHEEL_NAME
        if proc.returncode != 0 or not downloaded.is_file():
            lines = [ln for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
            reason = lines[-1].strip() if lines else f"exit code {proc.returncode}"
            raise WeightsError(
                f"pip download of {FACENET_PACKAGE}=={FACENET_VERSION} did not produce "
                f"{FACENET_WHEEL_NAME} ({reason}); {_by_hand_hint(cache_dir)}"
            )
        got = sha256_path(downloaded)
        if got != FACENET_WHEEL_SHA256:
            raise WeightsError(
                f"downloaded {FACENET_WHEEL_NAME} has sha256 {got}, expected "
                f"{FACENET_WHEEL_SHA256}; {_by_hand_hint(cache_dir)}"
            )
        os.replace(downloaded, target)
    return target


def _load_state_dict(data: bytes, where: str) -> dict[str, Tensor]:
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for bad pickles
        raise WeightsError(
            f"{where} could not be loaded with weights_only=True: {type(exc).__name__}"
        ) from exc
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise WeightsError(f"{where} is not a state dict of tensors (got {type(obj).__name__})")
    return dict(obj)


def read_mtcnn_state_dicts(
    wheel: Path, *, wheel_sha256: str | None = FACENET_WHEEL_SHA256
) -> PackagedWeights:
    """Read and verify the three MTCNN state dicts from a facenet-pytorch wheel file.

    Args:
        wheel: path to the wheel (any name).
        wheel_sha256: expected hash of the whole wheel; None skips that check and relies on the
            per-file hashes alone (for rebuilt archives).
    """
    wheel = Path(wheel)
    if not wheel.is_file():
        raise WeightsError(f"{wheel} does not exist; expected the {FACENET_WHEEL_NAME} wheel")
    actual_wheel_sha = sha256_path(wheel)
    if wheel_sha256 is not None and actual_wheel_sha != wheel_sha256:
        raise WeightsError(
            f"{wheel} has sha256 {actual_wheel_sha}, expected {wheel_sha256} "
            f"({FACENET_WHEEL_NAME}); delete it so it is fetched again"
        )

    state_dicts: dict[str, dict[str, Tensor]] = {}
    try:
        with zipfile.ZipFile(wheel) as zf:
            for key, member in MTCNN_MEMBERS.items():
                where = f"{member} in {wheel}"
                try:
                    data = zf.read(member)
                except KeyError as exc:
                    raise WeightsError(f"{where} is missing from the archive") from exc
                got = hashlib.sha256(data).hexdigest()
                if got != MTCNN_FILE_SHA256[key]:
                    raise WeightsError(
                        f"{where} has sha256 {got} ({len(data)} bytes), "
                        f"expected {MTCNN_FILE_SHA256[key]}"
                    )
                state_dicts[key] = _load_state_dict(data, where)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise WeightsError(f"{wheel} is not a readable zip archive: {exc}") from exc

    return PackagedWeights(
        state_dicts=state_dicts,
        package=FACENET_PACKAGE,
        version=FACENET_VERSION,
        wheel_sha256=actual_wheel_sha,
        file_sha256=dict(MTCNN_FILE_SHA256),
    )


def load_mtcnn_state_dicts(cache_dir: Path | None = None) -> PackagedWeights:
    """Fetch (if needed) the facenet-pytorch wheel and return its verified MTCNN state dicts.

    Args:
        cache_dir: wheel cache; defaults to ``paths.cache_dir()``.
    """
    cache = Path(cache_dir) if cache_dir is not None else paths.cache_dir()
    return read_mtcnn_state_dicts(fetch_facenet_wheel(cache))
