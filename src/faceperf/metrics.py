"""Accuracy metrics shared by the tests, the accuracy suite and the CLI."""

from __future__ import annotations

import numpy as np


def snr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Signal-to-noise ratio of ``candidate`` against ``reference`` in dB (inf when equal).

    10·log10(Σ ref² / Σ (ref − cand)²), in float64. 40 dB means the error's energy is 1/10,000
    of the signal's (about 1 % RMS); FP16 rounding alone gives about 60 dB on a well-conditioned
    network.
    """
    ref = np.asarray(reference, np.float64)
    cand = np.asarray(candidate, np.float64)
    if ref.shape != cand.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, candidate {cand.shape}")
    noise = float(np.sum((ref - cand) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))
