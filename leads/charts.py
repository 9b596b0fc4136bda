"""Small server-rendered SVG charts: bars for counts, lines for rates and durations.

No JavaScript and nothing fetched from elsewhere. Every piece of text goes through `format_html`, so a
label can never inject markup. Each chart is an image with a <title> and a <desc> (read by screen
readers), axis labels, and a <title> on every bar or point that browsers show as a tooltip. Colours come
from CSS classes (static/leads/dashboard.css), so the charts follow the console's light and dark themes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils import formats
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH = 640
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 48
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
# Beyond this many categories, only every n-th one is labelled on the x axis.
MAX_X_LABELS = 10
Y_TICKS = 4


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    chart_id: str,
    title: str,
    description: str,
    x_label: str,
    y_label: str,
    formatter: Callable[[float], str] | None = None,
    whole_numbers: bool = False,
    maximum: float | None = None,
) -> SafeString:
    """One bar per label; a None value draws no bar (no data, which is not the same as zero).

    The y axis goes up to `maximum` when given (100 for percentages), else to a round number above the
    highest value; `whole_numbers` keeps its ticks whole (for counts).
    """
    show = formatter or _number
    top = maximum or _scale(max((v for v in values if v is not None), default=0), whole_numbers=whole_numbers)
    slot = PLOT_WIDTH / max(len(labels), 1)
    bar_width = max(slot * 0.7, 1.0)
    bars = []
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        if value is None:
            continue
        bars.append(
            (
                _f(_x(index, slot) - bar_width / 2),
                _f(_y(value, top)),
                _f(bar_width),
                _f(value / top * PLOT_HEIGHT),
                label,
                show(value),
            )
        )
    body = format_html_join(
        "",
        '<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
        bars,
    )
    return _frame(chart_id, title, description, x_label, y_label, labels, top, show, body, legend=None)


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    chart_id: str,
    title: str,
    description: str,
    x_label: str,
    y_label: str,
    formatter: Callable[[float], str] | None = None,
    whole_numbers: bool = False,
    maximum: float | None = None,
) -> SafeString:
    """One line per series over the labels; a None value breaks the line (no data that day).

    `maximum` and `whole_numbers` set the y axis as for bar_chart.
    """
    show = formatter or _number
    highest = max((v for s in series for v in s.values if v is not None), default=0)
    top = maximum or _scale(highest, whole_numbers=whole_numbers)
    slot = PLOT_WIDTH / max(len(labels), 1)
    lines = []
    for number, line in enumerate(series, start=1):
        css = f"series-{number}"
        points = [None if v is None else (_x(index, slot), _y(v, top)) for index, v in enumerate(line.values)]
        polylines = format_html_join(
            "",
            '<polyline class="line {}" points="{}"></polyline>',
            ((css, " ".join(f"{_f(x)},{_f(y)}" for x, y in run)) for run in _segments(points) if len(run) > 1),
        )
        dots = format_html_join(
            "",
            '<circle class="point {}" cx="{}" cy="{}" r="3"><title>{} · {}: {}</title></circle>',
            (
                (css, _f(point[0]), _f(point[1]), line.name, label, show(value))
                for point, label, value in zip(points, labels, line.values, strict=True)
                if point is not None and value is not None
            ),
        )
        lines.append(format_html('<g class="series">{}{}</g>', polylines, dots))
    legend = format_html_join(
        "",
        '<g class="legend-item"><rect class="swatch series-{}" x="{}" y="6" width="12" height="12"></rect>'
        '<text x="{}" y="16">{}</text></g>',
        (
            (number, _f(LEFT + (number - 1) * 180), _f(LEFT + (number - 1) * 180 + 16), line.name)
            for number, line in enumerate(series, start=1)
        ),
    )
    body = format_html_join("", "{}", ((line,) for line in lines))
    return _frame(chart_id, title, description, x_label, y_label, labels, top, show, body, legend=legend)


def _frame(
    chart_id: str,
    title: str,
    description: str,
    x_label: str,
    y_label: str,
    labels: Sequence[str],
    top: float,
    show: Callable[[float], str],
    body: SafeString,
    *,
    legend: SafeString | None,
) -> SafeString:
    """The svg element, its accessible name and description, the axes, grid lines and tick labels."""
    ticks = format_html_join(
        "",
        '<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"></line>'
        '<text class="tick" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>',
        (
            (LEFT, _f(y), LEFT + PLOT_WIDTH, _f(y), LEFT - 6, _f(y), show(top * n / Y_TICKS))
            for n in range(Y_TICKS + 1)
            for y in [TOP + PLOT_HEIGHT - PLOT_HEIGHT * n / Y_TICKS]
        ),
    )
    slot = PLOT_WIDTH / max(len(labels), 1)
    step = math.ceil(len(labels) / MAX_X_LABELS) if labels else 1
    x_ticks = format_html_join(
        "",
        '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (_f(_x(index, slot)), TOP + PLOT_HEIGHT + 16, label)
            for index, label in enumerate(labels)
            if index % step == 0
        ),
    )
    return format_html(
        '<svg class="chart" id="{id}" viewBox="0 0 {width} {height}" role="img" '
        'aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{description}</desc>'
        "{legend}{ticks}"
        '<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"></line>'
        '<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"></line>'
        "{body}{x_ticks}"
        '<text class="axis-label" x="{x_middle}" y="{x_label_y}" text-anchor="middle">{x_label}</text>'
        '<text class="axis-label" x="14" y="{y_middle}" text-anchor="middle" '
        'transform="rotate(-90 14 {y_middle})">{y_label}</text>'
        "</svg>",
        id=chart_id,
        width=WIDTH,
        height=HEIGHT,
        title=title,
        description=description,
        legend=legend or "",
        ticks=ticks,
        left=LEFT,
        right=LEFT + PLOT_WIDTH,
        top=TOP,
        bottom=TOP + PLOT_HEIGHT,
        body=body,
        x_ticks=x_ticks,
        x_middle=_f(LEFT + PLOT_WIDTH / 2),
        x_label_y=HEIGHT - 6,
        x_label=x_label,
        y_middle=_f(TOP + PLOT_HEIGHT / 2),
        y_label=y_label,
    )


def _segments(points: Sequence[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive known points (a None ends a run)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(point)
    return [run for run in runs if run]


def _scale(highest: float, *, whole_numbers: bool) -> float:
    """The top of the y axis: Y_TICKS steps of 1, 2, 2.5 or 5 × 10ⁿ (whole steps for counts), so ticks read well."""
    wanted = max(highest, 0.0) / Y_TICKS
    if whole_numbers:
        wanted = max(wanted, 1.0)
    if wanted <= 0:
        return 1.0  # nothing to show: any scale will do
    magnitude = 10 ** math.floor(math.log10(wanted))
    for multiple in (1, 2, 2.5, 5, 10):
        step = multiple * magnitude
        if wanted <= step and not (whole_numbers and not float(step).is_integer()):
            return float(step * Y_TICKS)
    return float(10 * magnitude * Y_TICKS)


def _number(value: float) -> str:
    """A tick or tooltip value in the reader's locale, with no more decimals than it needs (at most two)."""
    for decimals in (0, 1):
        if math.isclose(value * 10**decimals, round(value * 10**decimals), abs_tol=1e-9):
            return formats.number_format(round(value, decimals), decimals, use_l10n=True, force_grouping=True)
    return formats.number_format(round(value, 2), 2, use_l10n=True, force_grouping=True)


def _x(index: int, slot: float) -> float:
    """The middle of the index-th category."""
    return LEFT + index * slot + slot / 2


def _y(value: float, top: float) -> float:
    return TOP + PLOT_HEIGHT - value / top * PLOT_HEIGHT


def _f(value: float) -> str:
    """A coordinate: SVG wants a dot as decimal separator whatever the locale."""
    return f"{value:.1f}"
