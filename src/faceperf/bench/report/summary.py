"""What a perf summary is made of, whichever gates ran: each gate's rows as a :class:`Section`,
the sections of one run as a :class:`Summary`, and their exit status by faceperf.verdicts' one
rule. The gates build their sections (bench/ab/render.py, bench/gate/render.py,
bench/speedups/render.py); bench/report/render.py lays a summary out as markdown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from faceperf.verdicts import Verdict, exit_code, worst_exit


@dataclass(frozen=True)
class Row:
    """One thing a gate judged, or only measured.

    Args:
        name: how the verdict line names it when it blocks.
        verdict: what its gate said; None when nothing judged it (a run without a baseline).
        cells: its table cells, markdown, already escaped.
        notes: the advice it points at; the report prints each once, however many rows point
            at it.
    """

    name: str
    verdict: Verdict | None
    cells: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def decides(self) -> bool:
        """A row a reviewer must read; the rest of a report folds away."""
        return self.verdict is not None and self.verdict.decides


@dataclass(frozen=True)
class Section:
    """One gate's part of a report.

    Args:
        key: what a caller picks the section by (``merge``, ``baseline``, ``speedups``).
        name: how the verdict line and the notes name it (``merge gate``).
        heading: the line above its tables.
        columns: its table's header cells.
        align: its table's rule cells (``---``, ``---:``), one per column.
        rows: its rows, in the order it lists them.
        marker_column: the cell of a row that carries the markers of the row's notes.
        notes: remarks no row points at (the rule it judged by, where it was measured, a
            warning about the whole comparison), each printed once after the tables.
        problems: run-level failures that are no single row's (the run measured nothing);
            each fails the section.
        not_run: why the gate compared nothing (no reference, no baseline); None when it ran.
        detail: what the verdict line adds after the section's counts (``12 s``).
        strict: ``undecided`` blocks (``--strict``, ``--perf-ab-strict``).
    """

    key: str
    name: str
    heading: str = ""
    columns: tuple[str, ...] = ()
    align: tuple[str, ...] = ()
    rows: tuple[Row, ...] = ()
    marker_column: int = -1
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    not_run: str | None = None
    detail: str = ""
    strict: bool = False

    def __post_init__(self) -> None:
        if len(self.align) != len(self.columns):
            raise ValueError(f"{self.name}: {len(self.columns)} columns, {len(self.align)} rules")
        for row in self.rows:
            if len(row.cells) != len(self.columns):
                raise ValueError(
                    f"{self.name}: row {row.name!r} has {len(row.cells)} cells, expected "
                    f"{len(self.columns)}"
                )

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        """Every verdict of the section: its rows', and a ``fail`` per run-level problem."""
        judged = tuple(row.verdict for row in self.rows if row.verdict is not None)
        return judged + (Verdict.FAIL,) * len(self.problems)

    def blocking(self) -> list[Row]:
        """The rows that fail the section."""
        return [r for r in self.rows if r.verdict is not None and r.verdict.blocks(self.strict)]

    def exit_code(self) -> int:
        return exit_code(self.verdicts, self.strict)


@dataclass(frozen=True)
class Summary:
    """Every section of one report, in the order the report shows them.

    Args:
        title: what the verdict line starts with (``faceperf perf on <profile>``).
        sections: the gates' sections.
    """

    title: str
    sections: tuple[Section, ...]

    @property
    def compared(self) -> bool:
        """True when some gate compared something (a fresh clone's first run compares nothing:
        no reference for the merge gate, no baseline for the baseline gate)."""
        return any(section.not_run is None for section in self.sections)

    def exit_code(self, ignore: Iterable[str] = ()) -> int:
        """The run's exit status over every section but those whose key is in ``ignore``
        (``--perf-no-gate`` reports the baseline gate without failing the run on it)."""
        ignored = set(ignore)
        return worst_exit(*(s.exit_code() for s in self.sections if s.key not in ignored))
