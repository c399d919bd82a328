"""Every perf summary for people, in one shape whichever gates ran (summary.md, ``faceperf ab
--markdown``, ``faceperf compare --markdown``):

1. one verdict line: the run's PASS / FAIL, then each gate's, what blocks and its counts;
2. only the rows that decide something (they block, or something moved), worst first;
3. every other row (same, not gated, pass, measured) folded in one ``<details>`` block;
4. the notes: each piece of advice once, the rows it concerns pointing at it with a
   superscript number, then the remarks of each gate (its rule, where it was measured).

A reviewer reads the first line and the short table in ten seconds. Formatting only: whether a
section passes is faceperf.verdicts' rule, asked through :class:`~.summary.Section`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from faceperf.bench.report.summary import Row, Section, Summary
from faceperf.verdicts import EXIT_OK, Verdict

NOTHING_COMPARED = "nothing compared"
MEASURED = "measured"  # what the fold calls a row no gate judged (a run without a baseline)
# The verdict line names at most this many blocking rows per gate, then says how many more.
_NAMED = 3
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def verdict_line(summary: Summary) -> str:
    """The run's verdict, then each gate's: ``<title>: FAIL — merge gate: FAIL, star-optimized
    slower (14 benchmarks: 1 slower, 13 same; 93 s) · baseline gate: PASS (...)``."""
    head = f"{summary.title}: {overall(summary)}"
    parts = [_section_status(section) for section in summary.sections]
    return " — ".join([head, " · ".join(parts)]) if parts else head


def overall(summary: Summary) -> str:
    """``FAIL`` when a verdict blocks, ``PASS`` when something was compared and nothing blocks,
    else ``nothing compared``."""
    if summary.exit_code() != EXIT_OK:
        return "FAIL"
    return "PASS" if summary.compared else NOTHING_COMPARED


def summary_markdown(summary: Summary) -> str:
    """The whole summary: verdict line, deciding rows, the rest folded, then the notes."""
    notes: dict[str, int] = {}  # advice → its number, in the order the report first cites it
    head, _, rest = verdict_line(summary).partition(" — ")
    lines = [f"**{head}**" + (f" — {rest}" if rest else ""), ""]
    shown_before: set[str] = set()
    for section in summary.sections:
        shown = [row for row in section.rows if row.decides]
        if shown:
            # Worst first: what blocks, then what moved, each in the gate's own order.
            shown.sort(key=lambda row: not _blocks(row, section))
            lines += _table(section, section.heading, shown, notes)
            shown_before.add(section.key)
    folded = [(s, [row for row in s.rows if not row.decides]) for s in summary.sections]
    folded = [(section, rows) for section, rows in folded if rows]
    if folded:
        labels = [_label(row.verdict) for _, rows in folded for row in rows]
        lines += [f"<details><summary>{_more(labels)}</summary>", ""]
        for section, rows in folded:
            # The rest of a table shown above: its name, not its heading again.
            again = section.key in shown_before
            heading = f"**{_capital(section.name)}**" if again else section.heading
            lines += _table(section, heading, rows, notes)
        lines += ["</details>", ""]
    remarks = [f"{_capital(s.name)}: {note}" for s in summary.sections for note in s.notes]
    remarks = list(dict.fromkeys(remarks))
    if notes or remarks:
        lines += ["**Notes**", ""]
        lines += [f"- {_superscript(number)} {text}" for text, number in notes.items()]
        lines += [f"- {text}" for text in remarks]
    return "\n".join(lines).rstrip("\n") + "\n"


def _section_status(section: Section) -> str:
    if section.not_run is not None:
        return f"{section.name}: not run ({section.not_run})"
    rows = section.rows
    counted = _counts(_label(row.verdict) for row in rows)
    inner = f"{len(rows)} benchmark{'' if len(rows) == 1 else 's'}"
    inner += f": {counted}" if counted else ""
    inner += f"; {section.detail}" if section.detail else ""
    if section.exit_code() == EXIT_OK:
        return f"{section.name}: PASS ({inner})"
    failing = [*section.problems, *(f"{row.name} {row.verdict}" for row in section.blocking())]
    named = ", ".join(failing[:_NAMED])
    if len(failing) > _NAMED:
        named += f" and {len(failing) - _NAMED} more"
    return f"{section.name}: FAIL, {named} ({inner})"


def _table(section: Section, heading: str, rows: list[Row], notes: dict[str, int]) -> list[str]:
    lines = [heading, ""] if heading else []
    lines += [_cells(section.columns), "|" + "|".join(section.align) + "|"]
    for row in rows:
        cells = list(row.cells)
        markers = " ".join(_superscript(_cite(note, notes)) for note in dict.fromkeys(row.notes))
        if markers:
            column = section.marker_column
            cells[column] = f"{cells[column]} {markers}".lstrip()
        lines.append(_cells(cells))
    return [*lines, ""]


def _cite(note: str, notes: dict[str, int]) -> int:
    return notes.setdefault(note, len(notes) + 1)


def _blocks(row: Row, section: Section) -> bool:
    return row.verdict is not None and row.verdict.blocks(section.strict)


def _label(verdict: Verdict | None) -> str:
    return MEASURED if verdict is None else verdict.value


def _counts(labels: Iterable[str]) -> str:
    """``1 slower, 2 same``: in the order of the vocabulary, what no gate judged last."""
    counted = Counter(labels)
    order = [*(v.value for v in Verdict), MEASURED]
    return ", ".join(f"{counted[label]} {label}" for label in order if counted[label])


def _more(labels: list[str]) -> str:
    return f"{len(labels)} more row{'' if len(labels) == 1 else 's'} ({_counts(labels)})"


def _cells(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _superscript(number: int) -> str:
    return str(number).translate(_SUPERSCRIPT)
