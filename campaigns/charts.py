"""Small charts as server-rendered SVG: no JavaScript library, no CDN, so the admin works offline.

Built with ElementTree, so the output is always well-formed XML and every label is escaped.
"""

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.safestring import SafeString, mark_safe

# Wagtail's admin palette: teal for the first series, salmon for the second.
PALETTE = ("#007d7e", "#e9765f", "#2e1f5e")
GRID = "#e0e0e0"
TEXT = "#5c5c5c"
FONT = "font-family:system-ui,sans-serif;font-size:11px"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int | float]


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 1): a round axis top."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def count_axis(value: float, max_ticks: int = 5) -> tuple[int, int]:
    """(top, step) of an axis that counts in whole numbers: step is 1, 2 or 5 times a power of ten,
    top the first multiple of step at or above ``value``, with at most ``max_ticks`` steps.

    Counts of opens and clicks are whole: an axis labelled 0.5 would claim half an open.
    """
    value = max(math.ceil(value), 1)
    magnitude = 1
    while True:
        for step in (magnitude, 2 * magnitude, 5 * magnitude):
            if math.ceil(value / step) <= max_ticks:
                return math.ceil(value / step) * step, step
        magnitude *= 10


def _fmt(number: float) -> str:
    return f"{number:.2f}".rstrip("0").rstrip(".")


def _svg(width: int, height: int, title: str) -> ET.Element:
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {width} {height}",
            "width": "100%",
            "role": "img",
            "aria-label": title,
            "class": "campaign-chart",
            "style": f"max-width:{width}px",
        },
    )
    ET.SubElement(svg, "title").text = title
    return svg


def _text(parent, x, y, content, anchor="middle"):
    el = ET.SubElement(parent, "text", {"x": _fmt(x), "y": _fmt(y), "text-anchor": anchor, "fill": TEXT, "style": FONT})
    el.text = content
    return el


def _axes(svg, *, left, top, plot_w, plot_h, top_value, step=None):
    """Horizontal grid lines with value labels: at 0, half and the top of the axis, or at every
    ``step`` (whole-number axes)."""
    fractions = (0, 0.5, 1) if step is None else [n * step / top_value for n in range(round(top_value / step) + 1)]
    for fraction in fractions:
        y = top + plot_h - fraction * plot_h
        ET.SubElement(
            svg,
            "line",
            {"x1": _fmt(left), "x2": _fmt(left + plot_w), "y1": _fmt(y), "y2": _fmt(y), "stroke": GRID},
        )
        _text(svg, left - 6, y + 4, _fmt(top_value * fraction), anchor="end")


def _legend(svg, series: Sequence[Series], x: float, y: float):
    for index, one in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        offset = x + index * 110
        ET.SubElement(svg, "rect", {"x": _fmt(offset), "y": _fmt(y - 9), "width": "10", "height": "10", "fill": colour})
        _text(svg, offset + 14, y, one.name, anchor="start")


def bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    width: int = 760,
    height: int = 240,
    label_every: int = 1,
) -> SafeString:
    """Grouped vertical bars: one group per label, one bar per series (at most three series).

    ``labels`` name the groups (shown every ``label_every`` groups); each series has one value per
    label. Every bar carries a ``<title>`` ("<series>, <label>: <value>") as its tooltip. A bar of
    value 0 is drawn with zero height, so the number of ``rect.bar`` elements is len(labels) x
    len(series). When every value is a whole number the axis counts in whole numbers
    (count_axis). Returns safe SVG markup for a template.
    """
    left, right, top, bottom = 40, 10, 24, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = max((v for s in series for v in s.values), default=0)
    step = None
    if all(float(v).is_integer() for s in series for v in s.values):
        top_value, step = count_axis(highest)
    else:
        top_value = nice_max(highest)
    svg = _svg(width, height, title)
    _axes(svg, left=left, top=top, plot_w=plot_w, plot_h=plot_h, top_value=top_value, step=step)
    _legend(svg, series, left, 12)

    groups = max(len(labels), 1)
    group_w = plot_w / groups
    bar_w = max(group_w * 0.8 / max(len(series), 1), 0.5)
    for group, label in enumerate(labels):
        x0 = left + group * group_w + group_w * 0.1
        for index, one in enumerate(series):
            value = one.values[group]
            bar_h = plot_h * value / top_value
            bar = ET.SubElement(
                svg,
                "rect",
                {
                    "class": "bar",
                    "x": _fmt(x0 + index * bar_w),
                    "y": _fmt(top + plot_h - bar_h),
                    "width": _fmt(bar_w),
                    "height": _fmt(bar_h),
                    "fill": PALETTE[index % len(PALETTE)],
                    "data-value": _fmt(value),
                },
            )
            ET.SubElement(bar, "title").text = f"{one.name}, {label}: {_fmt(value)}"
        if group % label_every == 0:
            _text(svg, left + group * group_w + group_w / 2, height - bottom + 16, label)
    return mark_safe(ET.tostring(svg, encoding="unicode"))  # built by ElementTree: escaped, well-formed


def line_chart(
    labels: Sequence[str],
    values: Sequence[int | float],
    *,
    title: str,
    width: int = 420,
    height: int = 140,
) -> SafeString:
    """A line with a light area under it; the first, middle and last labels are printed.

    The y axis starts at the lowest value rather than zero, so a list of 10,000 that grows by
    50 shows a visible slope. Returns safe SVG markup with one ``polyline.line``.
    """
    left, right, top, bottom = 44, 10, 10, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    svg = _svg(width, height, title)
    if not values:
        _text(svg, width / 2, height / 2, "No data")
        return mark_safe(ET.tostring(svg, encoding="unicode"))
    low, high = min(values), max(values)
    if high == low:
        low, high = max(low - 1, 0), high + 1
    step = plot_w / max(len(values) - 1, 1)
    points = [(left + i * step, top + plot_h - plot_h * (v - low) / (high - low)) for i, v in enumerate(values)]
    for value in (low, high):
        y = top + plot_h - plot_h * (value - low) / (high - low)
        ET.SubElement(
            svg, "line", {"x1": _fmt(left), "x2": _fmt(left + plot_w), "y1": _fmt(y), "y2": _fmt(y), "stroke": GRID}
        )
        _text(svg, left - 6, y + 4, _fmt(value), anchor="end")
    area = [*points, (points[-1][0], top + plot_h), (points[0][0], top + plot_h)]
    ET.SubElement(
        svg,
        "polygon",
        {"points": " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in area), "fill": PALETTE[0], "opacity": "0.12"},
    )
    line = ET.SubElement(
        svg,
        "polyline",
        {
            "class": "line",
            "points": " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in points),
            "fill": "none",
            "stroke": PALETTE[0],
            "stroke-width": "2",
        },
    )
    ET.SubElement(line, "title").text = f"{labels[0]}: {_fmt(values[0])}, {labels[-1]}: {_fmt(values[-1])}"
    for index in sorted({0, len(labels) // 2, len(labels) - 1}):
        anchor = "start" if index == 0 else "end" if index == len(labels) - 1 else "middle"
        _text(svg, points[index][0], height - 6, labels[index], anchor=anchor)
    return mark_safe(ET.tostring(svg, encoding="unicode"))
