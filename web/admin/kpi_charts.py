"""The KPI dashboard's charts: pygal charts rendered on the server as inline SVG.

Each function takes plain figures (already computed by ``store.kpis``) and answers the
chart's ``<svg>`` as markup for the page. Text in a chart (a source's name) is data:
pygal writes it as SVG text, escaped once by its XML serializer (lxml, a dependency of
ours, which the filters below rely on for ``getparent``).

The admin's Content-Security-Policy refuses inline styles and scripts, and pygal puts
both into every SVG (a ``<style>`` with its CSS, a ``<script>`` with its configuration
for the interactive tooltips). So every chart goes through ``_for_the_page``, which drops
them (and pygal's comments, and the hidden tooltip group, the one element with a
``style`` attribute); the CSS pygal writes for ``STYLE`` is served once, as a stylesheet
of this site, by ``stylesheet()`` (the page links it from ``/admin/kpis/charts.css``).
Without pygal's script the values are printed on the bars instead of in tooltips, and
every data point keeps an SVG ``<title>`` the browser shows on hover."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import pygal
from markupsafe import Markup
from pygal.style import Style

# The admin's palette and type (web/static/admin.css): brand blue first, then the "won"
# green, then colours for further series.
STYLE = Style(
    background="transparent",
    plot_background="#ffffff",
    foreground="#4a5468",
    foreground_strong="#1b2230",
    foreground_subtle="#d3d8e3",
    guide_stroke_color="#e3e6ee",
    major_guide_stroke_color="#d3d8e3",
    guide_stroke_dasharray="none",
    major_guide_stroke_dasharray="none",
    colors=("#3b5bdb", "#1f7a4d", "#e8590c", "#5535b5", "#0b7285", "#9a5b00"),
    value_colors=("#1b2230",) * 6,
    font_family='-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", '
    'Arial, "Noto Sans", "Liberation Sans", sans-serif',
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=13,
    value_label_font_size=12,
    legend_font_size=13,
    title_font_size=14,
    tooltip_font_size=13,
    no_data_font_size=15,
    opacity=".9",
    opacity_hover="1",
    transition="0ms",
)
# The class every chart's <svg> carries: the stylesheet's rules are scoped to it.
CHART_CLASS = "kpi-chart"
NO_DATA = "No leads in this period"
HALF, WIDE = 500, 1020
SVG = "http://www.w3.org/2000/svg"


def _config(**options: Any) -> dict[str, Any]:
    """pygal's options shared by every chart of the page, with ``options`` over them."""
    base: dict[str, Any] = {
        "style": STYLE,
        "disable_xml_declaration": True,
        "js": [],  # pygal's default loads its tooltip script from a CDN
        "css": [],  # its CSS is the stylesheet below, not a <style> in each chart
        "classes": ["pygal-chart", CHART_CLASS],
        # The size the page draws a half-width chart at on a laptop, so 13px text shows
        # at about 13px; the charts scale with their card (viewBox), text included.
        "width": HALF,
        "height": 300,
        "margin": 12,
        "spacing": 8,
        "show_legend": False,
        "print_values": True,
        "print_values_position": "top",
        "print_zeroes": False,
        "no_data_text": NO_DATA,
        "truncate_label": -1,  # labels are short; never cut a rep's name or a source
        "include_x_axis": True,
        "value_formatter": _whole,
    }
    base.update(options)
    return base


def _ticks(values: Sequence[int]) -> list[int]:
    """Whole-number ticks for a count axis, from 0 past the largest of ``values``, about
    five of them (pygal's own would divide 0 to 3 in tenths)."""
    top = max([*values, 1])
    raw = top / 5
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return list(range(0, math.ceil(top / step) * step + 1, step))


def _whole(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _name(element: Any) -> str:
    """An element's tag without its namespace ("" for a comment)."""
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _classes(element: Any) -> list[str]:
    return str(element.get("class") or "").split()


def _for_the_page(title: str, series: Sequence[str]) -> Any:
    """pygal's XML filter: drop what the CSP would refuse (and the comments), name the
    chart ``title``, and give each bar or dot a hover title ("label · series: value")."""

    def apply(svg: Any) -> Any:
        for element in list(svg.iter()):
            parent = element.getparent()
            if parent is None:
                continue
            name = _name(element)
            if not name or name in ("style", "script") or element.get("style") is not None:
                parent.remove(element)
            elif name == "title" and parent is svg:
                element.text = title
            elif "tooltip-trigger" in _classes(element):
                _hover_title(parent, series)
        # The id is random per render; the page names each chart by its <figure> instead.
        svg.attrib.pop("id", None)
        svg.set("role", "img")
        return svg

    return apply


def _hover_title(point: Any, series: Sequence[str]) -> None:
    """What pygal's script would show in its tooltip, as an SVG <title> of the point."""
    desc = {" ".join(_classes(c)): c.text or "" for c in point if _name(c) == "desc"}
    name = ""
    group = point.getparent()
    while group is not None and not any(c.startswith("serie-") for c in _classes(group)):
        group = group.getparent()
    if group is not None and len(series) > 1:
        index = next(int(c[6:]) for c in _classes(group) if c.startswith("serie-"))
        name = series[index] if index < len(series) else ""
    label = " · ".join(part for part in (desc.get("x_label", ""), name) if part)
    element = point.makeelement(f"{{{SVG}}}title", {})
    element.text = f"{label}: {desc.get('value', '')}" if label else desc.get("value", "")
    point.insert(0, element)


def _render(chart: Any, title: str, series: Sequence[str]) -> Markup:
    chart.add_xml_filter(_for_the_page(title, series))
    return Markup(chart.render(is_unicode=True))


def funnel(stages: Sequence[tuple[str, int]], *, title: str, series: str) -> Markup:
    """Horizontal bars, one per stage (the first on top), each stage after the first
    labelled with its conversion from the stage before."""
    labels = []
    for index, (name, count) in enumerate(stages):
        before = stages[index - 1][1] if index else None
        if before is None:
            labels.append(name)
        else:
            labels.append(f"{name} ({count / before * 100:.1f} %)" if before else f"{name} (—)")
    # HorizontalBar draws its first label at the bottom: reversed, the funnel reads down.
    counts = [count for _, count in stages]
    chart = pygal.HorizontalBar(
        **_config(height=60 + 50 * len(stages), x_labels=labels[::-1], y_labels=_ticks(counts))
    )
    chart.add(series, counts[::-1])
    return _render(chart, title, [series])


def distribution(buckets: Sequence[tuple[str, int]], *, title: str, series: str) -> Markup:
    """Vertical bars, one per bucket, in the buckets' order."""
    counts = [count for _, count in buckets]
    chart = pygal.Bar(
        **_config(
            x_labels=[name for name, _ in buckets],
            y_labels=_ticks(counts),
            x_label_rotation=20 if len(buckets) > 5 else 0,
        )
    )
    chart.add(series, counts)
    return _render(chart, title, [series])


def over_time(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    title: str,
    every: int = 1,
) -> Markup:
    """Lines over time, one per series, with a legend; ``every``: label each n-th point
    only (every point keeps its hover title)."""
    chart = pygal.Line(
        **_config(
            width=WIDE,
            height=280,
            x_labels=list(labels),
            y_labels=_ticks([v for _, values in series for v in values]),
            x_labels_major_every=every,
            show_minor_x_labels=every <= 1,
            show_legend=True,
            legend_at_bottom=True,
            legend_at_bottom_columns=len(series),
            print_values=len(labels) <= 14,
            dots_size=3,
        )
    )
    for name, values in series:
        chart.add(name, list(values))
    return _render(chart, title, [name for name, _ in series])


def by_label(
    rows: Sequence[tuple[str, Sequence[int]]], *, title: str, series: Sequence[str]
) -> Markup:
    """Horizontal grouped bars, one group per row label (the first row on top), one bar
    per series."""
    chart = pygal.HorizontalBar(
        **_config(
            height=84 + (20 * len(series) + 16) * max(len(rows), 1),
            x_labels=[label for label, _ in rows][::-1],
            y_labels=_ticks([v for _, values in rows for v in values]),
            show_legend=True,
            legend_at_bottom=True,
            legend_at_bottom_columns=len(series),
        )
    )
    for index, name in enumerate(series):
        chart.add(name, [values[index] for _, values in rows][::-1])
    return _render(chart, title, series)


@functools.cache
def stylesheet() -> str:
    """The CSS pygal writes for ``STYLE`` (its three stylesheets), scoped to
    ``.kpi-chart`` instead of one chart's random id, with a colour rule for each of
    ``STYLE``'s colours."""
    captured: list[str] = []

    def keep_css(svg: Any) -> Any:
        chart_id = svg.get("id")
        for element in svg.iter():
            if _name(element) == "style":
                captured.append((element.text or "").replace(f"#{chart_id}", f".{CHART_CLASS}"))
        return svg

    chart = pygal.Bar(**_config(no_prefix=False, css=["file://style.css", "file://graph.css"]))
    for index in range(len(STYLE.colors)):
        chart.add(str(index), [1])
    chart.add_xml_filter(keep_css)
    chart.render_tree()
    return "\n".join(captured) + "\n"
