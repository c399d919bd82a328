"""This machine's float32 matrix-multiply rate: the yardstick for a model's achieved GFLOP/s.

A square float32 ``numpy.matmul`` is the fastest dense arithmetic NumPy's BLAS does, so its rate
is the practical FP32 ceiling a convolution-heavy model can be compared with. NumPy multiplies
through its own BLAS (OpenBLAS in the wheels) with its own thread pool, sized when the library
loads (``OPENBLAS_NUM_THREADS`` and friends) and not settable afterwards without extra
packages; so each thread count is measured in a fresh child process started with those
variables set.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from faceperf.errors import FaceperfError

Clock = Callable[[], float]
# Every pool a NumPy BLAS may size itself from; setting all of them leaves no pool at its default.
_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class MatmulPeak:
    """Timed float32 (size x size) @ (size x size) products.

    Args:
        size: the matrices' side.
        threads: the BLAS threads they ran with.
        seconds: one duration per timed product.
        blas: which BLAS NumPy used, as NumPy describes it.
    """

    size: int
    threads: int
    seconds: tuple[float, ...]
    blas: str

    def __post_init__(self) -> None:
        if not self.seconds or any(not s > 0 for s in self.seconds):
            raise ValueError(f"matmul timings {self.seconds!r}: expected positive durations")

    @property
    def flops(self) -> int:
        """Floating-point operations of one product (a multiply and an add per term)."""
        return 2 * self.size**3

    @property
    def gflops(self) -> float:
        """GFLOP/s at the median duration."""
        return self.flops / statistics.median(self.seconds) / 1e9

    def to_json(self) -> dict[str, object]:
        return {
            "size": self.size,
            "threads": self.threads,
            "seconds": list(self.seconds),
            "blas": self.blas,
            "gflops": self.gflops,
        }


def time_matmul(
    size: int, repeats: int, warmup: int = 1, clock: Clock = time.perf_counter
) -> tuple[float, ...]:
    """Time ``repeats`` float32 products of two random (size x size) matrices, in this process.

    Args:
        size: the matrices' side.
        repeats: timed products.
        warmup: untimed products first (page faults of the output, BLAS thread start-up).
        clock: returns seconds; injected so tests control time.
    """
    if size < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"size {size}, repeats {repeats}, warmup {warmup}: expected positive")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), np.float32)
    for _ in range(warmup):
        np.matmul(a, b, out=out)
    seconds = []
    for _ in range(repeats):
        start = clock()
        np.matmul(a, b, out=out)
        seconds.append(clock() - start)
    return tuple(seconds)


def blas_description() -> str:
    """NumPy's BLAS as its build configuration names it, e.g. ``scipy-openblas 0.3.31 (...)``."""
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    name, version = blas.get("name", "unknown BLAS"), blas.get("version", "")
    detail = blas.get("openblas configuration", "")
    return f"{name} {version}".strip() + (f" ({detail.strip()})" if detail else "")


def measure_matmul_peak(
    threads: int, size: int = 2048, repeats: int = 5, timeout_s: float = 600.0
) -> MatmulPeak:
    """Time float32 matmuls in a child process whose BLAS uses ``threads`` threads.

    Args:
        threads: BLAS threads of the child.
        size: the matrices' side (2048: large enough for the BLAS to reach its peak, about
            17 GFLOP a product).
        repeats: timed products (after one warm-up).
        timeout_s: give up on the child after this long.

    Raises:
        FaceperfError: the child failed or printed something that is not its result.
    """
    if threads < 1:
        raise ValueError(f"threads {threads}: expected a positive integer")
    env = {**os.environ, **dict.fromkeys(_THREAD_VARIABLES, str(threads))}
    command = [sys.executable, "-m", "faceperf.bench.speedups.matmul_peak", str(size), str(repeats)]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise FaceperfError(
            f"matmul peak with {threads} threads took over {timeout_s:g} s"
        ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise FaceperfError(f"matmul peak with {threads} threads failed: {last}")
    try:
        result = json.loads(done.stdout)
        return MatmulPeak(size, threads, tuple(result["seconds"]), str(result["blas"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise FaceperfError(f"matmul peak child printed no result ({exc})") from None


def _child(argv: list[str]) -> None:
    # The child's whole job is one JSON line on stdout for measure_matmul_peak to read.
    size, repeats = int(argv[0]), int(argv[1])
    seconds = time_matmul(size, repeats)
    print(json.dumps({"seconds": list(seconds), "blas": blas_description()}))


if __name__ == "__main__":
    _child(sys.argv[1:])
