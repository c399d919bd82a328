"""Feeding image batches to a Runner whatever batch size and dtype its artifact declares.

The wrappers build float32 NCHW batches; an artifact may take float16 (Core ML), a dynamic batch
(baseline exports) or a fixed one (optimized exports: 1). These helpers adapt the batch to the
artifact so each wrapper keeps a single code path.
"""

from __future__ import annotations

import numpy as np

from faceperf.artifacts.manifest import TensorInfo
from faceperf.errors import ArtifactError
from faceperf.pipeline.profiler import MODEL_INFERENCE, StageProfiler
from faceperf.runtime.base import Runner


def image_input(runner: Runner) -> TensorInfo:
    """The runner's one input, which must be an NCHW image batch with 3 channels.

    Args:
        runner: a loaded model.
    """
    if len(runner.inputs) != 1:
        names = [t.name for t in runner.inputs]
        raise ArtifactError(f"{runner.source}: expected one image input, found {names}")
    info = runner.inputs[0]
    if len(info.shape) != 4 or info.shape[1] != 3:
        raise ArtifactError(
            f"{runner.source}: input {info.name!r} has shape {info.shape}, "
            "expected (batch, 3, height, width)"
        )
    return info


def fixed_batch(info: TensorInfo) -> int | None:
    """The batch size the input is fixed to, or None when the batch dimension is dynamic."""
    batch = info.shape[0]
    return batch if isinstance(batch, int) else None


def run_batched(
    runner: Runner, batch: np.ndarray, profiler: StageProfiler, name: str
) -> dict[str, np.ndarray]:
    """Run a float32 (N, 3, H, W) batch and return outputs with N rows each.

    A dynamic-batch artifact gets the whole batch in one call; a fixed-batch one gets chunks of
    its size (the last chunk padded with zeros, whose rows are dropped). Each runner call is one
    ``name`` record in ``profiler`` (category model_inference), so the operation's count is the
    number of model invocations, as in the application's profile.

    Args:
        runner: a loaded model with one NCHW input.
        batch: (N, 3, H, W) float32, N >= 1.
        profiler: where each call is timed.
        name: the inference operation name (e.g. ``STAR_onnx``).
    """
    info = image_input(runner)
    size = fixed_batch(info) or len(batch)
    results = []
    for start in range(0, len(batch), size):
        chunk = batch[start : start + size]
        if len(chunk) < size:
            pad = np.zeros((size - len(chunk), *chunk.shape[1:]), chunk.dtype)
            chunk = np.concatenate([chunk, pad])
        with profiler.stage(name, MODEL_INFERENCE):
            # The cast to the artifact's dtype (float16 for Core ML) is timed as part of the call:
            # it is the price of that artifact's input contract.
            feed = np.ascontiguousarray(chunk, dtype=info.dtype)
            results.append(runner.run({info.name: feed}))
    return {key: np.concatenate([r[key] for r in results])[: len(batch)] for key in results[0]}
