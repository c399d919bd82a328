"""Deterministic surrogate weights for models whose real checkpoint is not present.

A surrogate has the exact architecture and state-dict names of the real model. Its weights are
drawn from NumPy's legacy ``RandomState`` (whose stream is frozen across NumPy releases), one
stream per tensor seeded from the seed and the tensor's name, so adding a layer elsewhere does not
change the others. BatchNorm statistics are then calibrated on the fixture faces so activations
stay in realistic ranges (and inside FP16 range). A surrogate measures speed and conversion
fidelity honestly; it says nothing about the real model's task accuracy.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

FP16_MAX = 65504.0
_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)


def tensor_rng(seed: int, name: str) -> np.random.RandomState:
    """The random stream for one named tensor."""
    return np.random.RandomState((seed * 1_000_003 + zlib.crc32(name.encode())) % (2**32))


def init_surrogate(model: nn.Module, seed: int) -> None:
    """Fill every parameter of ``model`` deterministically (He-normal convs and linears).

    Buffers keep what the architecture builds (fixed transforms such as STAR's edge-to-heatmap
    map are part of the model, not of its training); BatchNorm statistics are reset.
    """
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, param in model.named_parameters():
            owner_name, _, leaf = name.rpartition(".")
            value = _initial_value(modules[owner_name], leaf, param, seed, name)
            param.copy_(torch.from_numpy(value))
        for module in model.modules():
            if isinstance(module, _NORM_TYPES):
                module.reset_running_stats()


def _initial_value(
    owner: nn.Module, leaf: str, param: torch.Tensor, seed: int, name: str
) -> np.ndarray:
    shape = tuple(param.shape)
    if isinstance(owner, _NORM_TYPES):
        return np.full(shape, 1.0 if leaf == "weight" else 0.0, np.float32)
    if isinstance(owner, nn.PReLU):
        return np.full(shape, 0.25, np.float32)
    rng = tensor_rng(seed, name)
    if leaf == "bias":
        return rng.uniform(-0.01, 0.01, shape).astype(np.float32)
    if param.dim() >= 2:
        fan_in = int(np.prod(shape[1:]))
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
    return rng.normal(0.0, 1.0, shape).astype(np.float32)


@contextmanager
def _batchnorm_calibration(model: nn.Module) -> Iterator[None]:
    norms = [m for m in model.modules() if isinstance(m, _NORM_TYPES)]
    saved = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over all calibration batches
        m.train()
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved, strict=True):
            m.momentum = momentum
        model.eval()


def calibrate_batchnorm(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Set every BatchNorm's running statistics to those of ``model`` on ``batches``.

    Layers are calibrated in one pass: each normalises with its batch statistics while the
    pass runs, which is exactly the distribution the next layer sees at inference.
    """
    with _batchnorm_calibration(model), torch.no_grad():
        for batch in batches:
            model(batch)


def activation_peak(model: nn.Module, batch: torch.Tensor) -> float:
    """The largest absolute value any module outputs on ``batch`` (FP16 headroom check)."""
    peak = 0.0

    def record(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal peak
        for value in output if isinstance(output, tuple) else (output,):
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                peak = max(peak, float(value.detach().abs().max()))

    handles = [m.register_forward_hook(record) for m in model.modules()]
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return peak
