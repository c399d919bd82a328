"""Speedups for people: the table ``faceperf bench speedups`` prints, and the speedups' section
of a perf report's summary (bench/report/render.py lays it out). Formatting only."""

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING

from faceperf.bench.gate.storage import short_name
from faceperf.bench.report.summary import Row, Section
from faceperf.bench.speedups.published import APPLE_SILICON, PublishedFigure
from faceperf.verdicts import Verdict

if TYPE_CHECKING:
    # Annotations only: models.py imports PyTorch, which the report folder must not need.
    from faceperf.bench.speedups.estimate import SpeedupRecord
    from faceperf.bench.speedups.interleaved import SpeedupInterval
    from faceperf.bench.speedups.models import SpeedupsReport

SPEEDUPS_KEY = "speedups"
_MTCNN = ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")
_TABLE_HEADER = (
    "model",
    "weights",
    "baseline",
    "optimized",
    "eager",
    "optimized vs baseline",
    "optimized vs eager",
    "GFLOP",
    "GFLOP/s",
    "% matmul",
    "Apple M-series, published",
)


def speedups_table(report: SpeedupsReport) -> str:
    """The printed table: speedups with their intervals, GFLOP/s, and the published figures."""
    rows = [_TABLE_HEADER]
    for m in report.models:
        share = report.percent_of_peak(m)
        rows.append(
            (
                m.model,
                m.weights,
                _ms(m.baseline_ms),
                _ms(m.optimized_ms),
                _ms(m.eager_ms),
                _interval_text(m.over_baseline),
                _interval_text(m.over_eager),
                f"{m.flops / 1e9:.3g}",
                f"{m.gflops:.3g}",
                "-" if share is None else f"{share:.0f} %",
                _published_cell(m.model),
            )
        )
    versions = ", ".join(f"{k} {v}" for k, v in report.versions.items())
    lines = [
        f"faceperf bench speedups on {report.profile}: ONNX Runtime {report.backend} and PyTorch "
        f"eager, {report.threads} thread(s) each ({versions})",
        f"median ms per call; speedup = median(slow) / median(fast) with its 95 % bootstrap "
        f"interval; {report.rounds} interleaved rounds per pair after {report.warmup} warm-ups",
        "",
        *_aligned(rows, right=range(2, 10)),
        "",
    ]
    lines += [
        f"float32 matmul {p.size}x{p.size} through NumPy, {p.threads} BLAS thread(s): "
        f"{p.gflops:.0f} GFLOP/s (median of {len(p.seconds)}; {p.blas})"
        for p in report.peaks
    ]
    notes = [
        "GFLOP: Conv/ConvTranspose/Gemm/MatMul of optimized.onnx at the input shape "
        "(2 x MACs); GFLOP/s: that over the optimized median; % matmul: of the matmul rate "
        "with the same thread count (over 100 % when ONNX Runtime's kernels use wider "
        "vectors than the BLAS kernel NumPy picked, named above).",
        f"Published: {report.published_source}; the first shipped model against Core ML FP16 "
        "on the Neural Engine, not this machine's pair; MTCNN's is the whole detector.",
    ]
    lines += [textwrap.fill(note, 100, subsequent_indent="  ") for note in notes]
    return "\n".join(lines) + "\n"


def speedup_section(records: Mapping[str, SpeedupRecord]) -> Section | None:
    """The speedups' part of a perf summary: one row per benchmark of ``records`` (benchmark
    name → record, as :func:`~faceperf.bench.speedups.estimate.speedup_records` reads them from
    a run), ``pass`` / ``fail`` against its floor, ``not gated`` without one; None when there
    are none."""
    if not records:
        return None
    rows = []
    for name, record in records.items():
        i = record.interval
        verdict = {None: Verdict.NOT_GATED, True: Verdict.PASS, False: Verdict.FAIL}[record.holds]
        cells = (
            f"`{short_name(name)}`",
            _median_ms(record.samples.a_s),
            _median_ms(record.samples.b_s),
            f"{i.point:.2f}x",
            f"{i.low:.2f}-{i.high:.2f}x",
            "—" if record.floor is None else f"{record.floor:g}x",
            "**fail**" if verdict is Verdict.FAIL else verdict.value,
        )
        rows.append(Row(short_name(name), verdict, tuple(c.replace("|", "\\|") for c in cells)))
    return Section(
        key=SPEEDUPS_KEY,
        name="speedup floors",
        heading="**Speedups**: optimized against baseline, interleaved in one process",
        columns=("benchmark", "slow (ms)", "fast (ms)", "speedup", "interval", "floor", "verdict"),
        align=("---", "---:", "---:", "---:", "---", "---:", "---"),
        rows=tuple(rows),
        notes=(
            "median(slow) / median(fast) with its 95 % bootstrap interval; a floor holds "
            "(`pass`) when the whole interval is above it.",
        ),
    )


def _published_short(figure: PublishedFigure) -> str:
    """``163.2 ms -> 70.5 ms (2.31x)``."""
    factor = f" ({figure.speedup:.3g}x)" if figure.speedup is not None else ""
    return f"{figure.baseline} -> {figure.optimised}{factor}"


def _published_cell(model: str) -> str:
    figure = APPLE_SILICON.get(model)
    if figure is None:
        return "-"
    if model in _MTCNN:
        return f"detector {figure.baseline.split(' (')[0]} -> {figure.optimised.split(' (')[0]}"
    return _published_short(figure)


def _interval_text(interval: SpeedupInterval) -> str:
    return f"{interval.point:.2f}x [{interval.low:.2f}, {interval.high:.2f}]"


def _ms(value: float) -> str:
    # About three significant digits: 190, 15.9, 7.29, 0.0812.
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _median_ms(samples: tuple[float, ...]) -> str:
    return f"{1e3 * statistics.median(samples):.3g}"


def _aligned(rows: list[tuple[str, ...]], right: range) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines
