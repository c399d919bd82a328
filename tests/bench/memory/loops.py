"""A real loop run in a fresh process with its memory sampled, for tests/bench/memory/test_leak.py:
``python loops.py MODE FEED CALLS EVERY`` prints one MemoryTrace as JSON.

MODE: ``clean`` (MTCNN O-Net on FEED, outputs dropped), ``leak`` (the same loop keeping every
call's outputs in a list, the fault a pipeline change makes), ``plateau`` (no model: a buffer
that grows by 256 kB a call up to a cap, then stops, as an allocator's arena does).
A fresh process, because freed memory in a long-lived one hides a leak until it is used up.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from faceperf.bench.memory.leak import sample_run
from faceperf.bench.memory.meters import reader_name, resident_reader
from faceperf.bench.memory.workloads import model_step
from faceperf.runtime.artifact_ref import ArtifactRef

PLATEAU_CAP = 80  # chunks of 256 kB: 20 MB


def _step(mode: str, directory: Path, feed: Path):
    if mode == "plateau":
        chunks = []

        def grow() -> None:
            if len(chunks) < PLATEAU_CAP:
                chunks.append(np.ones(32768))  # 256 kB, every page written

        return grow
    step = model_step(ArtifactRef(directory, "optimized"), "mtcnn_onet", np.load(feed))
    if mode == "clean":
        return step
    kept = []
    return lambda: kept.append(step())


def main(argv: list[str]) -> None:
    mode, directory, feed, calls, every = argv
    step = _step(mode, Path(directory), Path(feed))
    trace = sample_run(mode, step, int(calls), int(every), resident_reader(), reader_name())
    print(json.dumps(trace.to_json()))


if __name__ == "__main__":
    main(sys.argv[1:])
