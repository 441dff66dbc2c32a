"""Small-count suppression: no count from 1 to 4 is printed, and none can be worked out.

The property tests judge every published table with an independent reader:
a brute-force search (sets of reachable sums, not the intervals the
suppression itself uses) for a second assignment of the hidden cells that
agrees with everything printed. A hidden cell with no such alternative
would be recoverable from the totals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facelead.domain.suppression import (
    MIN_SHOWN,
    Mark,
    Suppression,
    exposed,
    suppress,
    suppress_group,
    text,
)

CAP_MARGIN = 12


def _printed(values: Sequence[int], sup: Suppression) -> list[str]:
    return [text(v, m) for v, m in zip(values, sup.cells, strict=True)]


def _domain(mark: Mark, bound: int | None, cap: int) -> range:
    """What a reader of the symbols may assume about one hidden cell."""
    if mark is Mark.SMALL:
        return range(1, MIN_SHOWN)
    return range(MIN_SHOWN, min(bound if bound is not None else cap, cap) + 1)


def _reachable(domains: Sequence[range]) -> set[int]:
    sums = {0}
    for domain in domains:
        sums = {s + v for s in sums for v in domain}
    return sums


def _hidden(values: Sequence[int], sup: Suppression, cap: int) -> dict[int, range]:
    printed = [v for v, m in zip(values, sup.cells, strict=True) if m is Mark.SHOWN and v > 0]
    bound = min(printed) if printed else None
    return {i: _domain(m, bound, cap) for i, m in enumerate(sup.cells) if m is not Mark.SHOWN}


def _totals(total: int, mark: Mark, cap: int) -> set[int]:
    if mark is Mark.SHOWN:
        return {total}
    if mark is Mark.SMALL:
        return set(range(1, MIN_SHOWN))
    return set(range(0, cap + 1))


def recoverable(
    tables: Sequence[Sequence[int]], sups: Sequence[Suppression]
) -> list[tuple[int, int, int]]:
    """Hidden cells for which no other value agrees with everything printed."""
    total = sum(tables[0])
    cap = total + CAP_MARGIN
    allowed = _totals(total, sups[0].total, cap)
    views: list[tuple[int, dict[int, range]] | None] = []
    for values, sup in zip(tables, sups, strict=True):
        if sup.dropped:
            views.append(None)
            continue
        shown = sum(v for v, m in zip(values, sup.cells, strict=True) if m is Mark.SHOWN)
        hidden = _hidden(values, sup, cap)
        views.append((shown, hidden))
        allowed &= {shown + s for s in _reachable(list(hidden.values()))}
    found = []
    for k, view in enumerate(views):
        if view is None:
            continue
        shown, hidden = view
        others_allowed = _totals(total, sups[0].total, cap)
        for j, other in enumerate(views):
            if other is not None and j != k:
                others_allowed &= {other[0] + s for s in _reachable(list(other[1].values()))}
        for i, domain in hidden.items():
            rest = _reachable([d for j, d in hidden.items() if j != i])
            alternative = any(
                shown + v + s in others_allowed for v in domain if v != tables[k][i] for s in rest
            )
            if not alternative:
                found.append((k, i, tables[k][i]))
    return found


def check_published(tables: Sequence[Sequence[int]], sups: Sequence[Suppression]) -> None:
    total = sum(tables[0])
    for values, sup in zip(tables, sups, strict=True):
        printed_min = min(
            (v for v, m in zip(values, sup.cells, strict=True) if m is Mark.SHOWN and v > 0),
            default=None,
        )
        for value, mark in zip(values, sup.cells, strict=True):
            if mark is Mark.SHOWN:
                assert not 1 <= value < MIN_SHOWN, (values, sup)  # never printed
            elif mark is Mark.SMALL:
                assert 1 <= value < MIN_SHOWN  # the symbol tells the truth
            elif not sup.dropped:
                assert value >= MIN_SHOWN  # "x" is 5 or more ...
                assert printed_min is None or value <= printed_min  # ... and the smallest
        if sup.total is Mark.SHOWN:
            assert not 1 <= total < MIN_SHOWN
        if sup.total is Mark.SMALL:
            assert 1 <= total < MIN_SHOWN
    assert recoverable(tables, sups) == [], (tables, sups)
    assert not any(exposed(tables, sups))


counts = st.one_of(st.integers(0, 6), st.integers(0, 40))


@settings(max_examples=300, deadline=None)
@given(st.lists(counts, min_size=1, max_size=8))
def test_no_small_count_printed_or_recoverable_in_a_table(values: list[int]) -> None:
    sup = suppress(values)
    check_published([values], [sup])
    for value, mark in zip(values, sup.cells, strict=True):
        if value == 0 and not sup.dropped:
            assert mark is Mark.SHOWN  # zero singles nobody out: printed as 0


@st.composite
def breakdowns(draw: st.DrawFn) -> list[list[int]]:
    """The same items counted by two or three attributes: tables sharing one total."""
    sizes = draw(st.lists(st.integers(1, 5), min_size=2, max_size=3))
    items = draw(
        st.lists(st.tuples(*(st.integers(0, n - 1) for n in sizes)), min_size=0, max_size=30)
    )
    tables = []
    for axis, size in enumerate(sizes):
        seen = Counter(item[axis] for item in items)
        tables.append([seen.get(c, 0) for c in range(size)])
    return tables


@settings(max_examples=300, deadline=None)
@given(breakdowns())
def test_no_small_count_recoverable_across_tables_sharing_a_total(tables: list[list[int]]) -> None:
    sups = suppress_group(tables)
    assert len({s.total for s in sups}) == 1  # one total, printed (or not) the same everywhere
    check_published(tables, sups)


def test_one_hidden_cell_next_to_a_printed_total_brings_the_next_smallest() -> None:
    values = [3, 10, 20, 40]
    sup = suppress(values)
    assert _printed(values, sup) == ["<5", "x", "20", "40"]
    assert text(73, sup.total) == "73"
    assert recoverable([values], [sup]) == []
    # without the complement the 3 is plain subtraction: the reader check sees it
    primary_only = Suppression((Mark.SMALL, Mark.SHOWN, Mark.SHOWN, Mark.SHOWN), Mark.SHOWN)
    assert recoverable([values], [primary_only]) == [(0, 0, 3)]
    assert exposed([values], [primary_only]) == [[0]]


@pytest.mark.parametrize(
    ("values", "printed", "total"),
    [
        ([7, 9, 4, 4], ["x", "9", "<5", "<5"], "24"),  # 4 + 4 = 8 would pin both at 4
        ([21, 0, 0, 3], ["x", "0", "0", "<5"], "24"),
        ([4, 5, 5], ["<5", "x", "x"], "14"),  # one x could only be the other 5: both go
        ([5, 6, 3, 2, 1, 2], ["5", "6", "<5", "<5", "<5", "<5"], "19"),  # 8 over four: safe
        ([1, 1, 1, 1], ["<5", "<5", "<5", "<5"], "x"),  # four cells under a total of 4
        ([6, 0, 1], ["x", "0", "<5"], "7"),
        ([0, 0, 0], ["0", "0", "0"], "0"),
        ([12, 30], ["12", "30"], "42"),
    ],
)
def test_worked_examples(values: list[int], printed: list[str], total: str) -> None:
    sup = suppress(values)
    assert _printed(values, sup) == printed
    assert text(sum(values), sup.total) == total
    check_published([values], [sup])


def test_a_table_that_would_give_a_shared_total_away_is_withheld_whole() -> None:
    # one category of 4 next to four categories of 1: the total is 4 either way
    tables = [[4], [1, 1, 1, 1]]
    first, second = suppress_group(tables)
    assert first.dropped and first.cells == (Mark.WITHHELD,)
    assert second.cells == (Mark.SMALL,) * 4 and second.total is Mark.WITHHELD
    check_published(tables, [first, second])


def test_a_total_withheld_in_one_table_is_withheld_in_all() -> None:
    tables = [[1, 5], [6, 0]]  # alone, the second would print the total 6
    sups = suppress_group(tables)
    assert {s.total for s in sups} == {Mark.WITHHELD}
    check_published(tables, sups)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        suppress([3, -1])
    with pytest.raises(ValueError, match="same total"):
        suppress_group([[1, 2], [4]])
