"""``faceperf bench memory`` (peak memory per phase, size on disk, the FP16 ratio) and
``faceperf bench leak`` (the long leak runs); registered under ``bench`` by cli/bench.py, kept
apart so the measuring commands' options stay in one place."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from faceperf.cli.options import add_json, add_models, add_threads, add_variant, add_variants
from faceperf.options import add_artifacts, add_backend, at_least, number

MEMORY_VARIANTS = ["optimized", "optimized_fp16", "baseline"]
bytes_per_call = number(
    lambda v: v > 0, "a positive number of bytes per call", edges=("0", "-1"), example="256"
)


def add_memory(sub: argparse._SubParsersAction) -> None:
    memory = sub.add_parser(
        "memory",
        help="peak memory per model x variant (load, steady; each in a fresh process), size on "
        "disk, FP16 ratio (exit 1 when an FP16 variant is not half its sibling)",
    )
    add_artifacts(memory)
    add_models(memory)
    add_variants(
        memory,
        MEMORY_VARIANTS,
        help="comma-separated variants (default: " + ",".join(MEMORY_VARIANTS) + ")",
    )
    add_backend(memory)
    add_threads(memory, default=None, help="intra-op threads of ONNX Runtime (default: its own)")
    memory.add_argument(
        "--calls", type=at_least(1), default=5, help="steady calls per model (default 5)"
    )
    memory.add_argument(
        "--pipeline-frames",
        type=at_least(0),
        default=10,
        help="steady frames of the Face Mirror pipeline (default 10; 0: no pipeline)",
    )
    memory.add_argument(
        "--mtcnn-frames",
        type=at_least(0),
        default=8,
        help="steady frames of the MTCNN cascade on the fixture scenes (default 8; 0: none)",
    )
    memory.add_argument(
        "--reference", type=Path, default=None, help="compare sizes on disk with this folder"
    )
    add_json(memory)
    memory.set_defaults(func=_memory)


def add_leak(sub: argparse._SubParsersAction) -> None:
    leak = sub.add_parser(
        "leak",
        help="long runs (2000 calls per model, 1000 frames of MTCNN and of the pipeline) with "
        "memory sampled; "
        "exit 1 when memory still grows at the end of a run",
    )
    add_artifacts(leak)
    add_models(leak)
    add_variant(leak)
    add_backend(leak)
    add_threads(leak, default=None, help="intra-op threads of ONNX Runtime (default: its own)")
    leak.add_argument(
        "--calls", type=at_least(2), default=2000, help="calls per model (default 2000)"
    )
    leak.add_argument(
        "--frames",
        type=at_least(0),
        default=1000,
        help="frames of the Face Mirror pipeline, the clip looped (default 1000; 0: none)",
    )
    leak.add_argument(
        "--mtcnn-frames",
        type=at_least(0),
        default=1000,
        help="frames of the MTCNN cascade, the fixture scenes looped (default 1000; 0: none)",
    )
    leak.add_argument(
        "--threshold",
        type=bytes_per_call,
        default=None,
        help="bytes per call above which memory still grows (default 256)",
    )
    leak.add_argument("--plot", type=Path, default=None, help="write memory over calls (PNG)")
    add_json(leak)
    leak.set_defaults(func=_leak)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _memory(args: argparse.Namespace) -> int:
    from faceperf.bench.memory.peak import measure_models
    from faceperf.bench.memory.render import fp16_lines, memory_table, size_lines
    from faceperf.bench.memory.size import compare_sizes, folder_sizes, fp16_checks
    from faceperf.models.registry import default_registry
    from faceperf.verdicts import exit_code

    sizes = folder_sizes(args.artifacts)
    checks = fp16_checks(args.artifacts)
    changes = compare_sizes(args.reference, args.artifacts) if args.reference else ()
    records = measure_models(
        args.artifacts,
        args.models or default_registry().names(),
        args.variants,
        backend=args.backend,
        threads=args.threads,
        calls=args.calls,
        pipeline_frames=args.pipeline_frames,
        mtcnn_frames=args.mtcnn_frames,
        say=lambda r: _say(f"measured {r.name}"),
        workers=os.cpu_count() or 1,
    )
    if args.json:
        document = {
            "memory": [r.to_json() for r in records],
            "sizes": [s.to_json() for s in sizes.values()],
            "fp16": [c.to_json() for c in checks],
            "size_changes": [c.to_json() for c in changes],
        }
        print(json.dumps(document, indent=2))
    else:
        print(memory_table(records, sizes))
        print(fp16_lines(checks), end="")
        print(size_lines(changes), end="")
    return exit_code([c.verdict for c in checks] + [c.verdict for c in changes])


def _leak(args: argparse.Namespace) -> int:
    from faceperf.bench.memory.leak import LeakPolicy
    from faceperf.bench.memory.longrun import leak_runs
    from faceperf.bench.memory.render import leak_table, plot_traces
    from faceperf.models.registry import default_registry
    from faceperf.verdicts import exit_code

    policy = LeakPolicy() if args.threshold is None else LeakPolicy(threshold=args.threshold)
    runs = leak_runs(
        args.artifacts,
        args.models or default_registry().names(),
        args.variant,
        backend=args.backend,
        threads=args.threads,
        calls=args.calls,
        frames=args.frames,
        mtcnn_frames=args.mtcnn_frames,
        policy=policy,
        say=lambda run: _say(run.verdict.describe()),
    )
    if args.plot is not None:
        plot_traces(args.plot, [(run.trace, run.verdict) for run in runs])
    if args.json:
        print(json.dumps([run.to_json() for run in runs], indent=2))
    else:
        print(leak_table([run.verdict for run in runs]), end="")
    return exit_code(run.verdict.verdict for run in runs)
