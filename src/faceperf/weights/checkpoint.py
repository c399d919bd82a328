"""Reading PyTorch checkpoints safely and fitting them strictly into a module.

Checkpoints are pickles. They are only ever read with ``weights_only=True`` so that a file from a
stranger cannot run code; every failure becomes a one-line :class:`WeightsError` naming the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from faceperf.errors import WeightsError
from faceperf.models.registry import Container

_MAX_KEYS_NAMED = 6


def read_checkpoint(path: Path) -> object:
    """Unpickle ``path`` with ``weights_only=True``, turning every failure into a WeightsError."""
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for damaged files; all become one line
        refused = _refused_global(str(err))
        if refused:
            raise WeightsError(
                f"{path}: refused to load: the pickle asks to run code or build arbitrary "
                f"objects ({refused}); faceperf only loads plain tensors (weights_only=True)"
            ) from None
        raise WeightsError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {_gist(err)}"
        ) from None


def _refused_global(message: str) -> str | None:
    # weights_only names the global it refused ("Trying to load unsupported GLOBAL posix.mkdir");
    # a damaged file fails in the same exception type without naming one.
    for line in message.splitlines():
        if "GLOBAL" in line or "Unsupported global" in line:
            return line.strip().rstrip(".")
    return None


def _gist(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    noise = ("Weights only load failed", "Please file an issue", "Check the documentation")
    useful = [line for line in lines if not line.startswith(noise)]
    return (useful or lines or [type(err).__name__])[0][:200]


def unwrap_state_dict(obj: object, container: Container, path: Path) -> dict[str, torch.Tensor]:
    """Take the state dict out of its container and drop a DataParallel prefix if present."""
    if container.key is not None:
        if not isinstance(obj, Mapping) or container.key not in obj:
            raise WeightsError(
                f"{path}: expected a dict with key {container.key!r} holding the weights"
            )
        obj = obj[container.key]
    if (
        container.optional_key is not None
        and isinstance(obj, Mapping)
        and container.optional_key in obj
    ):
        obj = obj[container.optional_key]
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(
            f"{path}: expected a non-empty state dict of tensors, got {type(obj).__name__}"
        )
    state = dict(obj)
    prefix = container.strip_prefix
    if prefix and all(k.startswith(prefix) for k in state):
        state = {k[len(prefix) :]: v for k, v in state.items()}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{path}: entries are not tensors: {_name_some(bad)}")
    return state


def load_into(module: nn.Module, state: Mapping[str, torch.Tensor], origin: str) -> None:
    """Load ``state`` into ``module`` strictly; name missing, unexpected and misshapen keys."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_name_some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_name_some(unexpected)}")
    if misshapen:
        problems.append(f"wrong shapes: {_name_some(misshapen)}")
    if problems:
        raise WeightsError(
            f"{origin}: does not fit {type(module).__name__}: " + "; ".join(problems)
        )
    module.load_state_dict(dict(state), strict=True)


def _name_some(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_KEYS_NAMED])
    more = len(items) - _MAX_KEYS_NAMED
    return f"{shown} (+{more} more)" if more > 0 else shown


def state_dict_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """A digest of a state dict's names, dtypes, shapes and bytes, in name order.

    Unlike a pickled file's hash it does not move with torch's serialisation format, so it can
    be pinned in a test to prove a build gives the same weights on every machine.
    """
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()
