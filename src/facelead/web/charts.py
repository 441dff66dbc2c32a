"""Horizontal bar charts as plain geometry; the template draws them as inline SVG.

Each chart is drawn next to a table with the same numbers, so the figures
reach a screen reader and a keyboard user too; each bar links to the rows
behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

BAR_HEIGHT = 26
BAR_GAP = 8
LABEL_WIDTH = 360
PLOT_WIDTH = 460
LABEL_CHARS = 48


@dataclass(frozen=True)
class Bar:
    label: str
    short: str
    value: int
    href: str
    y: int
    width: int


@dataclass(frozen=True)
class Chart:
    title: str
    bars: tuple[Bar, ...]
    label_width: int
    width: int
    height: int

    @property
    def total(self) -> int:
        return sum(bar.value for bar in self.bars)


def bar_chart(title: str, items: list[tuple[str, int, str]]) -> Chart:
    """Bars scaled to the largest value; a zero still shows as a hairline."""
    top = max((value for _, value, _ in items), default=0) or 1
    bars = tuple(
        Bar(
            label=label,
            short=label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…",
            value=value,
            href=href,
            y=i * (BAR_HEIGHT + BAR_GAP),
            width=max(2, round(PLOT_WIDTH * value / top)) if value else 2,
        )
        for i, (label, value, href) in enumerate(items)
    )
    height = max(len(bars), 1) * (BAR_HEIGHT + BAR_GAP)
    return Chart(title, bars, LABEL_WIDTH, LABEL_WIDTH + PLOT_WIDTH + 60, height)
