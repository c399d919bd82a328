"""Compute-plan summaries, drift and lint reports as text for a terminal or a pull request."""

from __future__ import annotations

from faceperf.coreml.analysis import PlanSummary
from faceperf.coreml.compute_plan import ComputePlan
from faceperf.coreml.lint import RULES, LintReport

_MAX_LISTED = 40  # fallback ops listed one by one; beyond, the per-type counts say it all


def plan_text(plan: ComputePlan, summary: PlanSummary) -> str:
    """The compute plan of one model: coverage, partitions, and what runs off the ANE."""
    lines = [
        f"{plan.model}  ({plan.compute_units}; {plan.provenance or 'provenance unknown'})",
        f"  ops: {summary.ops} ({summary.compute_ops} compute, "
        f"{summary.ops - summary.compute_ops - len(summary.unplaced)} const)",
        f"  Neural Engine: {summary.ane_ops} of {summary.compute_ops} compute ops "
        f"({_percent(summary.coverage_by_count)}), {_percent(summary.coverage_by_cost)} of the "
        f"estimated cost ({summary.costed_ops} ops costed)",
        f"  partitions: {summary.partitions} ({summary.device_switches} device switches)",
    ]
    if summary.unplaced:
        lines.append(f"  no device reported for {len(summary.unplaced)} non-const ops")
    if not summary.fallbacks:
        lines.append("  every compute op prefers the Neural Engine")
        return "\n".join(lines)
    lines += [
        "",
        "  off the Neural Engine, per type:",
        _table(
            ("type", "device", "ops"),
            [(c.op_type, c.device.value, str(c.count)) for c in summary.fallback_counts],
            indent="    ",
        ),
    ]
    listed = summary.fallbacks[:_MAX_LISTED]
    rows = [
        (
            op.path,
            op.op_type,
            op.outputs[0] if op.outputs else "-",
            op.preferred.value,
            ",".join(d.value for d in op.supported) or "-",
            _percent(op.cost, digits=2),
        )
        for op in listed
    ]
    lines += [
        "",
        "  off the Neural Engine, in program order:",
        _table(("path", "op", "output", "device", "supported", "cost"), rows, indent="    "),
    ]
    if len(summary.fallbacks) > len(listed):
        lines.append(f"    … and {len(summary.fallbacks) - len(listed)} more (use --json)")
    return "\n".join(lines)


def lint_text(report: LintReport) -> str:
    """The lint of one package, with the rule behind every expected fallback."""
    weights = _percent(report.fp16_weight_share, digits=3)
    lines = [
        report.source,
        f"  ops: {report.op_count} compute, {report.const_count} const; precision "
        f"{report.precision}; FP16 share: {weights} of float weights, "
        f"{_percent(report.fp16_op_share)} of float-producing ops",
        "  op types: " + ", ".join(f"{name} {n}" for name, n in report.op_types.items()),
    ]
    lines += [
        f"  flexible input {i.name}: {i.kind} {i.shapes}, default {i.default}"
        for i in report.flexible_inputs
    ]
    lines += [
        f"  FP32 island {n}: {len(island)} ops: {', '.join(island)}"
        for n, island in enumerate(report.fp32_islands, start=1)
    ]
    if report.non_float_ops:
        listed = ", ".join(f"{name} {n}" for name, n in report.non_float_ops.items())
        lines.append(f"  integer/bool ops (no documented rule; see the compute plan): {listed}")
    if not report.expected_fallbacks:
        lines.append("  expected fallbacks: none")
        return "\n".join(lines)
    counts = report.fallbacks_by_rule()
    lines.append(
        "  expected fallbacks: "
        + ", ".join(f"{counts[r.name]} by {r.name}" for r in RULES if r.name in counts)
    )
    for fallback in report.expected_fallbacks[:_MAX_LISTED]:
        lines.append(f"    {fallback.subject}  [{fallback.rule.name}]")
    if len(report.expected_fallbacks) > _MAX_LISTED:
        lines.append(f"    … and {len(report.expected_fallbacks) - _MAX_LISTED} more (use --json)")
    return "\n".join(lines)


def rules_text(reports: list[LintReport]) -> str:
    """The rules behind the expected fallbacks of ``reports``, each once, with its source."""
    used = {name for report in reports for name in report.fallbacks_by_rule()}
    lines = [
        f"{rule.name}: {rule.expectation}.\n  source: {rule.source}"
        for rule in RULES
        if rule.name in used
    ]
    return "\n".join(
        ["Expected fallbacks are heuristics; the compute plan on a Mac decides.", *lines]
    )


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], indent: str = "") -> str:
    every = [header, *rows]
    widths = [max(len(row[i]) for row in every) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in every
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(indent + line for line in lines)


def _percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f} %"
