"""The merge gate for people: its section of a summary (the verdict line, the table, the notes:
bench/report/render.py lays them out), a terminal table, and a plot of every ratio with its
interval against the threshold band. Formatting only."""

from __future__ import annotations

from pathlib import Path

from faceperf.bench.ab.footprint import size_name
from faceperf.bench.ab.modes import DUET
from faceperf.bench.ab.result import AbResult
from faceperf.bench.ab.sequential import Outcome
from faceperf.bench.memory.compare import MIB, MemoryChange
from faceperf.bench.memory.size import SizeChange
from faceperf.bench.report.render import summary_markdown
from faceperf.bench.report.summary import Row, Section, Summary
from faceperf.verdicts import Verdict

MERGE_KEY = "merge"
_METHOD = (
    "rounds alternate reference and candidate in random order, so machine load weighs on both "
    "sides alike."
)
_FOOTPRINT = (
    "memory: each phase's peak above the process's floor (load: opening the artifact; steady: "
    "running it), one fresh process a side; `larger` beyond the threshold. size: the "
    "artifact's bytes on disk, `larger` beyond the tolerance."
)
_UNDECIDED = (
    "An `undecided` benchmark needs more rounds (`{max_time}`) or a quieter machine (close other "
    "programs), not a rerun until it passes; it fails only with `{strict}`."
)
# How the user who ran the gate spells its options: the CLI's, or the pytest plugin's.
CLI_FLAGS = {"max_time": "--max-time", "strict": "--strict"}
PYTEST_FLAGS = {"max_time": "--perf-ab-max-time", "strict": "--perf-ab-strict"}
_TICKS = (0.5, 0.67, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0)
_COLUMNS = ("benchmark", "verdict", "candidate / reference", "interval", "rounds", "threshold")
_ALIGN = ("---", "---", "---:", "---", "---:", "---:")


def markdown(result: AbResult, strict: bool = False, flags: dict[str, str] = CLI_FLAGS) -> str:
    """The summary of a merge gate run on its own (``faceperf ab``)."""
    return summary_markdown(Summary("faceperf ab", (ab_section(result, strict, flags),)))


def ab_section(
    result: AbResult, strict: bool = False, flags: dict[str, str] = CLI_FLAGS
) -> Section:
    """The merge gate's part of a summary: one row per benchmark, one per model/variant on one
    side only; an ``undecided`` row points at the advice, said once.

    Args:
        result: the run.
        strict: ``undecided`` blocks.
        flags: how the user who ran the gate spells ``--max-time`` and ``--strict``.
    """
    undecided = _UNDECIDED.format(**flags)
    rows = [_row(o, result, strict, undecided) for o in result.outcomes]
    rows += [_memory_row(m, result) for m in result.memory]
    rows += [_size_row(s, result) for s in result.sizes]
    rows += [_one_side(name, Verdict.ADDED, "candidate only") for name in result.added]
    rows += [_one_side(name, Verdict.REMOVED, "reference only") for name in result.removed]
    env = result.environment
    notes = _method_notes(env)
    if result.memory or result.sizes:
        notes.append(_FOOTPRINT)
    if result.timed_out:
        notes.append("the time budget ended before every benchmark decided.")
    notes.append(
        f"measured on {env.get('profile', '?')} ({env.get('cpu', '?')}), backend "
        f"{env.get('backend', '?')}, {env.get('threads', '?')} thread(s) per session; "
        f"reference `{_side(result, 'reference')}`, candidate `{_side(result, 'candidate')}`."
    )
    detail = f"{result.elapsed_s:.0f} s" + (", time budget ended" if result.timed_out else "")
    return Section(
        key=MERGE_KEY,
        name="merge gate",
        heading="**Merge gate**: candidate against reference, interleaved in one run",
        columns=_COLUMNS,
        align=_ALIGN,
        rows=tuple(rows),
        marker_column=1,
        notes=tuple(notes),
        detail=detail,
        strict=strict,
    )


def _method_notes(env: dict) -> list[str]:
    """How the rounds were taken: which benchmarks in a duet, and why none was where one was
    wanted."""
    modes = env.get("modes") or {}
    duet = [name for name, mode in modes.items() if mode == DUET]
    notes = [_METHOD] if len(duet) < len(modes) or not modes else []
    if duet:
        cores = env.get("duet_cores", ["?", "?"])
        notes.append(
            f"in a duet, both sides run at the same moment on cores {cores[0]} and {cores[1]}, "
            f"swapped within every round, so machine load weighs on both: {', '.join(duet)}."
        )
    if env.get("duet_unavailable"):
        notes.append(f"no duet here, every benchmark alternating: {env['duet_unavailable']}.")
    return notes


def not_run_section(reason: str) -> Section:
    """The merge gate's part of a summary when it had nothing to compare (no reference)."""
    return Section(key=MERGE_KEY, name="merge gate", not_run=reason)


def terminal(result: AbResult, strict: bool = False) -> str:
    """Plain text for the CLI: every benchmark, worst first, what explains each slower one,
    then the verdict line."""
    order = {Verdict.SLOWER: 0, Verdict.UNDECIDED: 1, Verdict.FASTER: 2, Verdict.SAME: 3}
    rows = sorted(result.outcomes, key=lambda o: order[o.verdict])
    width = max((len(o.name) for o in rows), default=10)
    lines = []
    for o in rows:
        accepted = result.accepted.get(o.name)
        note = f"  ({o.verdict.value}, accepted: {accepted})" if accepted else ""
        lines.append(
            f"  {result.verdict_of(o, strict).value:<9} {o.name:<{width}}  {_interval_text(o)}  "
            f"{o.rounds} rounds, ±{100 * o.threshold:g} %{note}"
        )
    lines += [
        f"  {verdict.value:<9} {name:<{width}}  {text}"
        for name, verdict, text in _footprint_lines(result)
    ]
    for name, found in result.explanations.items():
        lines.append(f"  {_explained(name, found)}")
    lines += [f"  added      {name}" for name in result.added]
    lines += [f"  removed    {name}" for name in result.removed]
    return "\n".join([*lines, result.headline(strict)])


def _row(outcome: Outcome, result: AbResult, strict: bool, undecided: str) -> Row:
    interval = outcome.interval
    verdict = result.verdict_of(outcome, strict)
    text = verdict.value
    reason = result.accepted.get(outcome.name)
    if verdict is Verdict.ACCEPTED:
        text = f"accepted ({outcome.verdict.value}): {reason}"
    elif reason is not None:
        text = f"{verdict.value} (accepted: {reason})"
    ratio = "-" if interval is None else f"x{interval.point:.3f}"
    bounds = "-" if interval is None else f"[{interval.low:.3f}, {interval.high:.3f}]"
    cells = (
        outcome.name,
        _escape(text),
        ratio,
        bounds,
        str(outcome.rounds),
        f"±{100 * outcome.threshold:g} %",
    )
    notes = (undecided,) if outcome.verdict is Verdict.UNDECIDED else ()
    if outcome.name in result.explanations:
        notes += (_explained(outcome.name, result.explanations[outcome.name]),)
    return Row(outcome.name, verdict, cells, notes)


def explanation_file(name: str) -> str:
    """The report file that holds a benchmark's explanation tables."""
    return f"explain-{name}.md"


def _explained(name: str, found: tuple) -> str:
    if not found:
        return (
            f"{name}: no artifact of it differs between the two sides (byte-identical files), so "
            "no operation can explain it: the machine moved, or the code around the model did."
        )
    heads = "; ".join(e.headline() for e in found)
    return f"{_escape(heads)} (tables: `{explanation_file(name)}`)."


def _footprint_lines(result: AbResult) -> list[tuple[str, Verdict, str]]:
    named = []
    for change in result.memory:
        # The verdict has its own column: the text starts with where it was decided.
        text = change.describe().removeprefix(str(change.verdict)).removeprefix(": ").strip()
        named.append((change.name, change.verdict, text))
    for change in result.sizes:
        named.append((size_name(change), change.verdict, change.describe().split(": ", 1)[1]))
    lines = []
    for name, raw, text in named:
        verdict = result.counted_verdict(name, raw)
        if verdict is Verdict.ACCEPTED:
            text += f"  ({raw.value}, accepted: {result.accepted[name]})"
        lines.append((name, verdict, text))
    return lines


def _verdict_text(verdict: Verdict, raw: Verdict, reason: str | None) -> str:
    if verdict is Verdict.ACCEPTED:
        return _escape(f"accepted ({raw.value}): {reason}")
    return verdict.value


def _memory_row(change: MemoryChange, result: AbResult) -> Row:
    verdict = result.counted_verdict(change.name, change.verdict)
    worst = change.worst
    ratio = "-" if worst.ratio is None else f"x{worst.ratio:.3f} ({worst.phase})"
    phases = "; ".join(
        f"{c.phase} {c.reference_bytes / MIB:.1f} → {c.candidate_bytes / MIB:.1f} MiB"
        for c in change.phases
    )
    cells = (
        change.name,
        _verdict_text(verdict, change.verdict, result.accepted.get(change.name)),
        ratio,
        phases,
        "1 process a side",
        change.threshold.describe(),
    )
    return Row(change.name, verdict, cells)


def _size_row(change: SizeChange, result: AbResult) -> Row:
    name = size_name(change)
    verdict = result.counted_verdict(name, change.verdict)
    ratio = "-" if change.ratio is None else f"x{change.ratio:.3f}"
    sizes = " → ".join(
        "-" if b is None else f"{b / 1e6:.2f} MB"
        for b in (change.reference_bytes, change.candidate_bytes)
    )
    cells = (
        name,
        _verdict_text(verdict, change.verdict, result.accepted.get(name)),
        ratio,
        sizes,
        "-",
        f"±{100 * change.tolerance:g} %",
    )
    return Row(name, verdict, cells)


def _one_side(name: str, verdict: Verdict, where: str) -> Row:
    cells = (name, f"{verdict.value} ({where}, not judged)", "-", "-", "-", "-")
    return Row(name, verdict, cells)


def _escape(text: str) -> str:
    # A pipe ends a table cell and a newline ends the row; a reviewer's reason may hold either.
    return text.replace("|", "\\|").replace("\n", " ")


def _interval_text(outcome: Outcome) -> str:
    return "no rounds" if outcome.interval is None else outcome.interval.text()


def _side(result: AbResult, role: str) -> str:
    side = result.sides.get(role, {})
    return str(side.get("directory", "?")) if isinstance(side, dict) else "?"


def plot(result: AbResult, path: Path) -> None:
    """ab.png: each benchmark's ratio and interval; the threshold band shaded around 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outcomes = [o for o in result.outcomes if o.interval is not None]
    if not outcomes:
        return
    colours = {
        Verdict.SLOWER: "#d62728",
        Verdict.UNDECIDED: "#ff7f0e",
        Verdict.SAME: "#2ca02c",
        Verdict.FASTER: "#1f77b4",
    }
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(outcomes) + 1.4))
    for row, outcome in enumerate(outcomes):
        interval = outcome.interval
        low = max(interval.low, 0.5)
        high = min(interval.high, 2.0)
        ax.fill_betweenx(
            [row - 0.4, row + 0.4],
            1 / (1 + outcome.threshold),
            1 + outcome.threshold,
            color="#dddddd",
            zorder=0,
        )
        ax.plot([low, high], [row, row], color=colours[outcome.verdict], linewidth=2)
        ax.plot([interval.point], [row], "o", color=colours[outcome.verdict])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(outcomes)), [o.name for o in outcomes], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ticks = [t for t in _TICKS if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    ax.set_xticks(ticks, [f"x{t:g}" for t in ticks], fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel(
        "candidate / reference (log scale), interval at each benchmark's last look\n"
        "grey: ± threshold; red slower, orange undecided, green same, blue faster",
        fontsize=8,
    )
    ax.set_title(result.headline().removeprefix("faceperf ab: "), fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
