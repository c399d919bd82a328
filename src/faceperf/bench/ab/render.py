"""The merge gate for people: a summary a reviewer reads in ten seconds, a terminal table, and a
plot of every ratio with its interval against the threshold band. Formatting only."""

from __future__ import annotations

from pathlib import Path

from faceperf.bench.ab.result import AbResult
from faceperf.bench.ab.sequential import Outcome
from faceperf.bench.ab.stats import Verdict

_ADVICE = (
    "Rounds alternate reference and candidate in random order, so machine load weighs on both "
    "sides alike. An `undecided` benchmark needs more rounds (`{max_time}`) or a quieter machine "
    "(close other programs), not a rerun until it passes; it fails only with `{strict}`."
)
# How the user who ran the gate spells its options: the CLI's, or the pytest plugin's.
CLI_FLAGS = {"max_time": "--max-time", "strict": "--strict"}
PYTEST_FLAGS = {"max_time": "--perf-ab-max-time", "strict": "--perf-ab-strict"}
_TICKS = (0.5, 0.67, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0)
_HEADER = "| benchmark | verdict | candidate / reference | interval | rounds | threshold |"
_RULE = "|---|---|---:|---|---:|---:|"


def markdown(result: AbResult, strict: bool = False, flags: dict[str, str] = CLI_FLAGS) -> str:
    """The summary: the verdict line, the benchmarks that are not ``same``, then the rest folded."""
    notable = [o for o in result.outcomes if o.verdict is not Verdict.SAME]
    same = [o for o in result.outcomes if o.verdict is Verdict.SAME]
    lines = [f"**{result.headline(strict)}**", ""]
    if notable:
        lines += [_HEADER, _RULE, *(_row(o, result) for o in notable), ""]
    if result.added or result.removed:
        lines += [
            *(f"- added (candidate only, not judged): `{name}`" for name in result.added),
            *(f"- removed (reference only, not judged): `{name}`" for name in result.removed),
            "",
        ]
    if result.timed_out:
        lines += ["The time budget ended before every benchmark decided.", ""]
    if notable:
        lines += [_ADVICE.format(**flags), ""]
    if same:
        lines += [
            f"<details><summary>{len(same)} benchmark(s) the same within their threshold</summary>",
            "",
            _HEADER,
            _RULE,
            *(_row(o, result) for o in same),
            "",
            "</details>",
            "",
        ]
    env = result.environment
    lines.append(
        f"Measured on {env.get('profile', '?')} ({env.get('cpu', '?')}), backend "
        f"{env.get('backend', '?')}, {env.get('threads', '?')} thread(s) per session; "
        f"reference `{_side(result, 'reference')}`, candidate `{_side(result, 'candidate')}`."
    )
    return "\n".join(lines) + "\n"


def terminal(result: AbResult, strict: bool = False) -> str:
    """Plain text for the CLI: every benchmark, worst first, then the verdict line."""
    order = {Verdict.SLOWER: 0, Verdict.UNDECIDED: 1, Verdict.FASTER: 2, Verdict.SAME: 3}
    rows = sorted(result.outcomes, key=lambda o: order[o.verdict])
    width = max((len(o.name) for o in rows), default=10)
    lines = []
    for o in rows:
        accepted = result.accepted.get(o.name)
        note = f"  (accepted: {accepted})" if accepted else ""
        lines.append(
            f"  {o.verdict.value:<9} {o.name:<{width}}  {_interval_text(o)}  "
            f"{o.rounds} rounds, ±{100 * o.threshold:g} %{note}"
        )
    lines += [f"  added      {name}" for name in result.added]
    lines += [f"  removed    {name}" for name in result.removed]
    return "\n".join([*lines, result.headline(strict)])


def _row(outcome: Outcome, result: AbResult) -> str:
    interval = outcome.interval
    verdict = outcome.verdict.value
    if outcome.name in result.accepted:
        verdict += f" (accepted: {result.accepted[outcome.name]})"
    ratio = "-" if interval is None else f"x{interval.point:.3f}"
    bounds = "-" if interval is None else f"[{interval.low:.3f}, {interval.high:.3f}]"
    return (
        f"| {outcome.name} | {verdict} | {ratio} | {bounds} | {outcome.rounds} | "
        f"±{100 * outcome.threshold:g} % |"
    )


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
