"""A fixed reference workload timed beside every benchmark round: the machine's pulse.

On a shared runner the whole machine speeds up and slows down (other tenants, frequency), and
two unchanged runs a minute apart differ by up to 60 % in absolute time. A canary call right
before each round sees the same machine state as the round it precedes, so the ratio round /
canary cancels what the machine did and keeps what the artifact did. The gate judges these
ratios when both runs recorded them (``extra_info["canary_s"]``, one per round).

The canary is a small convolution network built in memory (fixed weights, no file), run by the
same ONNX Runtime CPU build with the same thread count as the benchmarks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

CANARY_KEY = "canary_s"
_CHANNELS, _SIZE, _LAYERS = 64, 56, 4
_IR_VERSION = 8  # ONNX Runtime 1.31 reads IR <= 13; 8 is what opset 17 needs


def canary_model() -> bytes:
    """The canary network, serialized: fixed weights, the same bytes on every machine."""
    rng = np.random.default_rng(0)
    weight = rng.normal(0.0, 0.05, (_CHANNELS, _CHANNELS, 3, 3)).astype(np.float32)
    nodes, previous = [], "x"
    for layer in range(_LAYERS):
        nodes.append(helper.make_node("Conv", [previous, "w"], [f"c{layer}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{layer}"], [f"r{layer}"]))
        previous = f"r{layer}"
    shape = [1, _CHANNELS, _SIZE, _SIZE]
    graph = helper.make_graph(
        nodes,
        "faceperf_canary",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=_IR_VERSION
    )
    return model.SerializeToString()


class Canary:
    """The reference workload (about 4 ms on one x86-64 core).

    Args:
        threads: ONNX Runtime intra-op threads, as the benchmarks use.
        clock: the timer (injected in tests).
    """

    def __init__(
        self, threads: int | None = 1, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(
            canary_model(), options, providers=["CPUExecutionProvider"]
        )
        pixels = np.random.default_rng(1).normal(size=(1, _CHANNELS, _SIZE, _SIZE))
        self._feed = {"x": pixels.astype(np.float32)}
        self._clock = clock

    def time_once(self) -> float:
        """Seconds one canary call took."""
        start = self._clock()
        self._session.run(None, self._feed)
        return self._clock() - start


def pedantic_with_canary(
    benchmark,
    target: Callable[..., object],
    args: Sequence[object] = (),
    rounds: int = 20,
    warmup_rounds: int = 3,
    canary: Canary | Callable[[], float] | None = None,
) -> object:
    """``benchmark.pedantic(target, args, rounds, warmup_rounds)`` with one canary call timed
    before every round, stored in ``benchmark.extra_info["canary_s"]`` (one per timed round).

    Args:
        benchmark: pytest-benchmark's fixture.
        target: the call to time.
        args: its positional arguments.
        rounds: timed rounds.
        warmup_rounds: untimed rounds first.
        canary: a Canary, or any callable returning seconds (default: a new one-thread Canary).
    """
    timer = canary.time_once if isinstance(canary, Canary) else canary
    if timer is None:
        timer = Canary().time_once
    pulses: list[float] = []

    def setup() -> tuple[tuple[object, ...], dict]:
        pulses.append(timer())
        return tuple(args), {}

    result = benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=warmup_rounds)
    if not benchmark.disabled:
        # setup runs before warm-up rounds too; the last `rounds` pulses pair with timed rounds.
        benchmark.extra_info[CANARY_KEY] = pulses[-rounds:]
    return result


def canary_ratios(samples: Sequence[float], pulses: object) -> tuple[float, ...] | None:
    """Each round over the canary beside it, or None when ``pulses`` do not pair with the
    samples (absent, another length, or not positive numbers)."""
    if not isinstance(pulses, list | tuple) or len(pulses) != len(samples):
        return None
    if not all(isinstance(p, int | float) and not isinstance(p, bool) and p > 0 for p in pulses):
        return None
    return tuple(s / p for s, p in zip(samples, pulses, strict=True))
