"""Budgets that travel with the CPU: a model's speed stated relative to the machine it ran on.

On Linux a latency budget is not a product requirement but a statement about how well an
artifact uses the machine, and the CI machine's CPU changes under us (STAR 200-547 ms for the
same artifact on three CPUs). So the machine is measured in the same run, with the same runtime
and thread count: the canary (bench/gate/canary.py, a fixed four-layer 3x3 convolution network
run by ONNX Runtime) is timed right before every round of a budget benchmark. From the two:

- **calibration units**: a round's time over the canary call beside it, median over rounds and
  per call (per frame); "STAR costs 44 canary calls". Machine drift during the run cancels,
  because each round is divided by the canary of the same moment.
- **efficiency**: the model's achieved GFLOP/s over the canary's (the calibrated GFLOP/s),
  i.e. (model FLOPs / canary FLOPs) / units. An artifact that wastes the machine (work that
  carries no FLOPs: per-channel convolutions where one grouped one would do, layout copies)
  lowers it on every CPU; a slower CPU slows the canary as much as the model and does not.

FLOPs are counted as bench/speedups/flops.py counts them (Conv, ConvTranspose, Gemm, MatMul),
for the canary and for the models alike, so the ratio compares like with like.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import onnx

from faceperf.bench.gate.canary import canary_model
from faceperf.bench.speedups.flops import count_flops

CALIBRATION_KEY = "calibration"  # extra_info: CalibratedTiming.to_json() of a budget benchmark


@functools.cache
def canary_flops() -> int:
    """FLOPs of one canary call, counted like a model's."""
    return count_flops(onnx.load_from_string(canary_model())).flops


@dataclass(frozen=True)
class CalibratedTiming:
    """A benchmark's timed rounds beside the canary call timed before each.

    Args:
        rounds_s: seconds of each timed round.
        canary_s: seconds of the canary call before each round (same length), or empty when
            the run timed none (then only absolute figures exist).
        calls_per_round: calls (frames) one round made; figures are per call.
        work_flops: FLOPs of one call, or None where the work has no fixed count (a detector
            cascade whose crops depend on the frame, the whole pipeline).
        reference_flops: FLOPs of one canary call.
    """

    rounds_s: tuple[float, ...]
    canary_s: tuple[float, ...] = ()
    calls_per_round: int = 1
    work_flops: int | None = None
    reference_flops: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rounds_s", tuple(self.rounds_s))
        object.__setattr__(self, "canary_s", tuple(self.canary_s))
        if not self.rounds_s or any(not s > 0 for s in self.rounds_s):
            raise ValueError(f"rounds {self.rounds_s!r}: expected positive durations")
        if self.canary_s and len(self.canary_s) != len(self.rounds_s):
            raise ValueError(
                f"{len(self.canary_s)} canary calls for {len(self.rounds_s)} rounds: expected one "
                "before each round"
            )
        if any(not s > 0 for s in self.canary_s):
            raise ValueError(f"canary calls {self.canary_s!r}: expected positive durations")
        if self.calls_per_round < 1:
            raise ValueError(f"calls_per_round {self.calls_per_round}: expected at least 1")
        for name in ("work_flops", "reference_flops"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} {value!r}: expected a positive count or None")

    @classmethod
    def of(
        cls,
        rounds_s: Sequence[float],
        canary_s: Sequence[float] | None,
        calls_per_round: int = 1,
        work_flops: int | None = None,
    ) -> CalibratedTiming:
        """The timing of a benchmark, with the canary's FLOPs filled in."""
        return cls(
            tuple(rounds_s), tuple(canary_s or ()), calls_per_round, work_flops, canary_flops()
        )

    @property
    def calibrated(self) -> bool:
        return bool(self.canary_s)

    @property
    def per_call_ms(self) -> float:
        """Milliseconds of one call at the median round."""
        return 1e3 * statistics.median(self.rounds_s) / self.calls_per_round

    @property
    def canary_ms(self) -> float | None:
        return 1e3 * statistics.median(self.canary_s) if self.canary_s else None

    @property
    def units(self) -> float | None:
        """One call's time in canary calls: the median over rounds of round / canary, per call."""
        if not self.canary_s:
            return None
        ratios = [r / c for r, c in zip(self.rounds_s, self.canary_s, strict=True)]
        return statistics.median(ratios) / self.calls_per_round

    @property
    def calibrated_gflops(self) -> float | None:
        """The canary's rate on this machine, this run: the yardstick."""
        if not self.canary_s or self.reference_flops is None:
            return None
        return self.reference_flops / statistics.median(self.canary_s) / 1e9

    @property
    def achieved_gflops(self) -> float | None:
        if self.work_flops is None:
            return None
        return self.work_flops / (self.per_call_ms / 1e3) / 1e9

    @property
    def efficiency(self) -> float | None:
        """Achieved GFLOP/s over calibrated GFLOP/s, each round against its own canary."""
        units = self.units
        if units is None or self.work_flops is None or self.reference_flops is None:
            return None
        return (self.work_flops / self.reference_flops) / units

    def describe(self) -> str:
        """``548 ms a call; canary 12.3 ms (75 GFLOP/s); 44.3 canary calls; efficiency 0.52``."""
        parts = [f"{self.per_call_ms:.4g} ms a call"]
        if self.canary_ms is not None:
            rate = self.calibrated_gflops
            parts.append(
                f"canary {self.canary_ms:.3g} ms" + (f" ({rate:.0f} GFLOP/s)" if rate else "")
            )
            parts.append(f"{self.units:.3g} canary calls")
        if self.efficiency is not None:
            parts.append(f"{self.achieved_gflops:.1f} GFLOP/s, efficiency {self.efficiency:.3f}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, object]:
        return {
            "per_call_ms": self.per_call_ms,
            "canary_ms": self.canary_ms,
            "units": self.units,
            "calibrated_gflops": self.calibrated_gflops,
            "achieved_gflops": self.achieved_gflops,
            "efficiency": self.efficiency,
            "work_flops": self.work_flops,
        }
