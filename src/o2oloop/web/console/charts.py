"""Charts as SVG drawn on the server from computed numbers: no JavaScript, no CDN, and
nothing to install beyond the templates. Each function returns the geometry a template
draws; the numbers stay exact and the chart prints and scales like text."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: float
    label: str
    title: str
    css: str = "bar"


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    baseline: float
    labels: list[tuple[float, str]]  # x-axis labels (x, text)


def axis(value: float, ticks: int = 4) -> tuple[float, float]:
    """(top, step): a round step (1, 2 or 5 × 10ⁿ, at least 1) and the multiple of it at or
    above `value`, so every tick label is a whole number."""
    if value <= 0:
        return float(ticks), 1.0
    rough = value / ticks
    magnitude = 10 ** math.floor(math.log10(rough)) if rough >= 1 else 1
    step = next(s * magnitude for s in (1, 2, 5, 10) if s * magnitude >= rough)
    step = max(step, 1)
    return step * math.ceil(value / step), float(step)


def _ticks(top_value: float, step: float, top: float, plot_h: float, fmt) -> list[Tick]:
    count = round(top_value / step)
    return [
        Tick(y=round(top + plot_h - plot_h * k / count, 1), label=fmt(step * k))
        for k in range(count + 1)
    ]


def bar_chart(
    values: Sequence[float],
    labels: Sequence[str],
    titles: Sequence[str],
    *,
    width: int = 720,
    height: int = 220,
    every: int = 1,
    tick_format=lambda v: f"{v:,.0f}",
    highlight: Sequence[bool] | None = None,
) -> BarChart:
    left, right, top, bottom = 44, 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value, step = axis(max(values, default=0))
    slot = plot_w / max(len(values), 1)
    bars = []
    for i, value in enumerate(values):
        h = plot_h * value / top_value
        bars.append(
            Bar(
                x=round(left + i * slot + slot * 0.15, 1),
                y=round(top + plot_h - h, 1),
                width=round(slot * 0.7, 1),
                height=round(h, 1),
                value=value,
                label=labels[i],
                title=titles[i],
                css="bar" if not highlight or highlight[i] else "bar prev",
            )
        )
    ticks = _ticks(top_value, step, top, plot_h, tick_format)
    labels_at = [
        (round(left + i * slot + slot / 2, 1), labels[i])
        for i in range(len(values))
        if i % every == 0 or i == len(values) - 1
    ]
    return BarChart(width, height, bars, ticks, top + plot_h, labels_at)


@dataclass(frozen=True, slots=True)
class StackedBar:
    x: float
    width: float
    parts: list[tuple[float, float, str, str]]  # (y, height, css, title)
    label: str


def stacked_chart(
    series: Sequence[Sequence[float]],
    css: Sequence[str],
    labels: Sequence[str],
    titles: Sequence[Sequence[str]],
    *,
    width: int = 720,
    height: int = 200,
) -> tuple[list[StackedBar], list[Tick], float, int, int]:
    left, right, top, bottom = 44, 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    count = len(labels)
    totals = [sum(s[i] for s in series) for i in range(count)]
    top_value, step = axis(max(totals, default=0))
    slot = plot_w / max(count, 1)
    bars = []
    for i in range(count):
        y = top + plot_h
        parts = []
        for k, values in enumerate(series):
            h = plot_h * values[i] / top_value
            y -= h
            parts.append((round(y, 1), round(h, 1), css[k], titles[k][i]))
        bars.append(
            StackedBar(
                round(left + i * slot + slot * 0.2, 1), round(slot * 0.6, 1), parts, labels[i]
            )
        )
    ticks = _ticks(top_value, step, top, plot_h, lambda v: f"{v:,.0f}")
    return bars, ticks, top + plot_h, width, height


def heat_colour(utilisation: float | None) -> str:
    """Light teal when quiet, deep teal near capacity, red-brown over it."""
    if utilisation is None:
        return "#eef1f4"
    u = max(0.0, min(utilisation, 1.5))
    if u > 1.0:
        return "#b42318"
    # interpolate #e6f4f2 → #0b5a54
    start, end = (0xE6, 0xF4, 0xF2), (0x0B, 0x5A, 0x54)
    mix = [round(a + (b - a) * u) for a, b in zip(start, end, strict=True)]
    return "#" + "".join(f"{c:02x}" for c in mix)
