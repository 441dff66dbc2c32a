"""Small-count suppression for published tables (statistical disclosure control).

A public report must not let anyone single out a person or a case, so a
count from 1 to 4 is never printed: it shows as "<5" (primary suppression).
Zero is printed: "none" singles nobody out. A table that prints its total
could still give a hidden count away by subtraction, so more cells are
withheld, shown as "x" (complementary suppression), until no hidden cell can
be worked out.

"Worked out" is judged against a reader who knows everything printed and
these rules: "<5" means 1 to 4; "x" means 5 or more (only such counts are
withheld this way), and never more than the smallest non-zero count still
printed in its table (the smallest is always the one withheld). Tables that
break down the same total (searches by month, by purpose, by offence, by
outcome) are read together. Every value domain is then an integer interval,
so the totals the tables allow, and the values each hidden cell can take,
are intervals too (``group_ranges``); a hidden cell is exposed when its
interval holds one value. (A reader who also replays the choices, "a second
cell was withheld, so the first choice exposed something", could narrow
some intervals further; the rules here do not model that.) While any cell
is exposed:

1. withhold the smallest printed non-zero cell of that table (so one hidden
   cell next to a printed total always brings a second);
2. if that table has none left, withhold the total, in every table;
3. then withhold the smallest printed non-zero cell of any table;
4. and if nothing is left to withhold, withhold the whole table: every cell
   prints "x" and the table says nothing (``Suppression.dropped``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

MIN_SHOWN = 5
"""The smallest non-zero count ever printed."""


class Mark(StrEnum):
    SHOWN = "shown"
    SMALL = "small"  # a count from 1 to 4
    WITHHELD = "withheld"  # withheld so that a small count cannot be worked out


SYMBOLS = {Mark.SMALL: "<5", Mark.WITHHELD: "x"}
LEGEND = (
    '"<5": a count from 1 to 4, not shown so that no person or case can be singled out. '
    '"x": withheld so that a count under 5 cannot be worked out from a total. '
    "0 means none."
)

Interval = tuple[int, int | None]  # lowest, highest (None: unbounded)


@dataclass(frozen=True)
class Suppression:
    """How each cell and the total of one table are printed."""

    cells: tuple[Mark, ...]
    total: Mark
    dropped: bool = False  # the whole table is withheld: it tells a reader nothing


def is_small(count: int) -> bool:
    return 1 <= count < MIN_SHOWN


def text(value: int, mark: Mark) -> str:
    """What a cell prints."""
    return str(value) if mark is Mark.SHOWN else SYMBOLS[mark]


def _cell_domain(mark: Mark, bound: int | None) -> Interval:
    """What a reader knows of a hidden cell; ``bound``: the table's smallest printed non-zero."""
    return (1, MIN_SHOWN - 1) if mark is Mark.SMALL else (MIN_SHOWN, bound)


def _bound(values: Sequence[int], marks: Sequence[Mark]) -> int | None:
    printed = [v for v, m in zip(values, marks, strict=True) if m is Mark.SHOWN and v > 0]
    return min(printed) if printed else None


def _total_domain(total: int, mark: Mark) -> Interval:
    if mark is Mark.SHOWN:
        return total, total
    if mark is Mark.SMALL:
        return 1, MIN_SHOWN - 1
    return 0, None


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _span(values: Sequence[int], marks: Sequence[Mark]) -> tuple[int, Interval]:
    """The printed sum of a table, and the interval its hidden cells add up to."""
    shown = sum(v for v, m in zip(values, marks, strict=True) if m is Mark.SHOWN)
    bound = _bound(values, marks)
    lo: int = 0
    hi: int | None = 0
    for mark in marks:
        if mark is not Mark.SHOWN:
            d_lo, d_hi = _cell_domain(mark, bound)
            lo, hi = lo + d_lo, _add(hi, d_hi)
    return shown, (lo, hi)


def _table_ranges(
    values: Sequence[int], marks: Sequence[Mark], need: Interval
) -> dict[int, Interval]:
    """Each hidden cell's interval, given the interval its table's hidden cells add up to."""
    hidden = [i for i, mark in enumerate(marks) if mark is not Mark.SHOWN]
    bound = _bound(values, marks)
    domains = {i: _cell_domain(marks[i], bound) for i in hidden}
    result: dict[int, Interval] = {}
    for i in hidden:
        lo, hi = domains[i]
        others_lo = sum(domains[j][0] for j in hidden if j != i)
        others_hi: int | None = 0
        for j in hidden:
            if j != i:
                others_hi = _add(others_hi, domains[j][1])
        if others_hi is not None:
            lo = max(lo, need[0] - others_hi)
        if need[1] is not None:
            cap = need[1] - others_lo
            hi = cap if hi is None else min(hi, cap)
        result[i] = (lo, hi)
    return result


def group_ranges(
    tables: Sequence[Sequence[int]], marks: Sequence[Suppression]
) -> list[dict[int, Interval]]:
    """Per table, the interval of values a reader cannot rule out for each hidden cell."""
    total = sum(tables[0]) if tables else 0
    t_lo, t_hi = _total_domain(total, marks[0].total) if marks else (0, None)
    spans = []
    for values, sup in zip(tables, marks, strict=True):
        shown, (lo, hi) = _span(values, sup.cells)
        spans.append(shown)
        if not sup.dropped:
            t_lo = max(t_lo, shown + lo)
            sum_hi = _add(shown, hi)
            t_hi = sum_hi if t_hi is None else t_hi if sum_hi is None else min(t_hi, sum_hi)
    return [
        {}
        if sup.dropped
        else _table_ranges(
            values, sup.cells, (t_lo - shown, None if t_hi is None else t_hi - shown)
        )
        for values, sup, shown in zip(tables, marks, spans, strict=True)
    ]


def exposed(tables: Sequence[Sequence[int]], marks: Sequence[Suppression]) -> list[list[int]]:
    """Per table, the hidden cells a reader can work out from what is printed."""
    return [
        [i for i, (lo, hi) in ranges.items() if hi is not None and lo >= hi]
        for ranges in group_ranges(tables, marks)
    ]


class _Group:
    """The marks being decided for tables that share one total."""

    def __init__(self, tables: Sequence[Sequence[int]]) -> None:
        self.tables = [list(t) for t in tables]
        self.cells = [[Mark.SMALL if is_small(v) else Mark.SHOWN for v in t] for t in tables]
        total = sum(self.tables[0]) if self.tables else 0
        self.total = Mark.SMALL if is_small(total) else Mark.SHOWN
        self.dropped = [False] * len(self.tables)

    def marks(self) -> list[Suppression]:
        return [
            Suppression(tuple(cells), self.total, dropped)
            for cells, dropped in zip(self.cells, self.dropped, strict=True)
        ]

    def spare(self, tables: Sequence[int]) -> tuple[int, int] | None:
        """The smallest printed non-zero cell of these tables, as (table, cell)."""
        found = [
            (self.tables[k][i], k, i)
            for k in tables
            if not self.dropped[k]
            for i, mark in enumerate(self.cells[k])
            if mark is Mark.SHOWN and self.tables[k][i] > 0
        ]
        if not found:
            return None
        _, k, i = min(found)
        return k, i

    def step(self, k: int) -> None:
        """One more thing withheld because table ``k`` exposes a cell."""
        own = self.spare([k])
        if self.total is not Mark.WITHHELD and own is not None:
            self.cells[k][own[1]] = Mark.WITHHELD
        elif self.total is not Mark.WITHHELD:
            self.total = Mark.WITHHELD
        elif (anywhere := own or self.spare(range(len(self.tables)))) is not None:
            self.cells[anywhere[0]][anywhere[1]] = Mark.WITHHELD
        else:
            self.dropped[k] = True
            self.cells[k] = [Mark.WITHHELD] * len(self.cells[k])


def suppress_group(tables: Sequence[Sequence[int]]) -> list[Suppression]:
    """Marks for tables that break the same total down in different ways."""
    if any(v < 0 for t in tables for v in t):
        raise ValueError("counts are never negative")
    if len({sum(t) for t in tables}) > 1:
        raise ValueError("tables of one group must have the same total")
    group = _Group(tables)
    while True:
        exposing = [k for k, cells in enumerate(exposed(tables, group.marks())) if cells]
        if not exposing:
            return group.marks()
        group.step(exposing[0])


def suppress(values: Sequence[int]) -> Suppression:
    """Marks for one table and its printed total."""
    return suppress_group([values])[0]
