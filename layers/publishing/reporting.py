"""The monthly situation report drawn: charts and maps (matplotlib, Agg), the HTML document and
its PDF (WeasyPrint).

Everything is drawn on the server from the figures of :mod:`layers.selectors.judgement`: the
charts and maps are PNGs inlined as ``data:`` URIs and the styles are in the document, so the
HTML file and the PDF open with no network. The maps need no basemap: the area's outline, its
small grids and the month's points or cells are enough to read them. Text is in the active
language (the scheduled command writes Chinese); labels are drawn in WenQuanYi Micro Hei, the
CJK font ``scripts/setup.sh`` installs, so Chinese never comes out as boxes.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from django.template.loader import render_to_string  # noqa: E402
from django.utils.translation import gettext as _  # noqa: E402
from django.utils.translation import gettext_noop  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Polygon as PolygonPatch  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

import shapely  # noqa: E402

from layers.names import localized  # noqa: E402
from layers.selectors.judgement import CHANNEL_CLASSES, MapData  # noqa: E402
from layers.templatetags.judgement import pct, signed  # noqa: E402

#: Fonts for labels: the CJK one first (Debian's fonts-wqy-microhei), DejaVu for the rest.
FONTS = ["WenQuanYi Micro Hei", "DejaVu Sans"]
DPI = 110
HOT_COLOURS = {
    "hot99": "#b2182b",
    "hot95": "#ef8a62",
    "not_significant": "#f7f7f7",
    "cold95": "#67a9cf",
    "cold99": "#2166ac",
}
_styled = False


def _style() -> None:
    global _styled
    if not _styled:
        plt.rcParams.update({"font.family": FONTS, "axes.unicode_minus": False, "svg.fonttype": "none"})
        _styled = True


def _png(figure: Figure) -> str:
    """The figure as a ``data:image/png;base64,…`` URI (closed afterwards)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def channel_label(channel: str) -> str:
    return {
        "hotline": _("12345 hotline"),
        "app": _("Xiaolan app"),
        "web": _("Web message"),
        "mediation": _("Mediation"),
        "petition": _("Petition"),
        "patrol": _("Grid and drone patrols"),
    }[channel]


def family_label(family: str) -> str:
    return {
        "dispute": _("Dispute"),
        "hazard": _("Safety hazard"),
        "environment": _("Environment and sanitation"),
        "municipal": _("Municipal facility"),
        "consultation": _("Consultation"),
        "suggestion": _("Suggestion"),
    }.get(family, family)


# --- charts ---------------------------------------------------------------------------------------


def chart_channels(figures: dict) -> str:
    """Cases per data class: this month, the month before and the same month last year."""
    _style()
    rows = {row["channel"]: row for row in figures["channels"]}
    labels = [channel_label(c) for c in CHANNEL_CLASSES]
    series = [
        (figures["month"], [rows[c]["cases"] for c in CHANNEL_CLASSES], "#c0392b"),
        (figures["previous_month"], [rows[c]["before"] for c in CHANNEL_CLASSES], "#e6a23c"),
        (figures["last_year_month"], [rows[c]["last_year"] for c in CHANNEL_CLASSES], "#8c9aa8"),
    ]
    figure, axes = plt.subplots(figsize=(7.2, 3.0))
    x = np.arange(len(labels))
    for i, (name, values, colour) in enumerate(series):
        bars = axes.bar(x + (i - 1) * 0.27, values, 0.27, label=name, color=colour)
        if i == 0:
            axes.bar_label(bars, fontsize=7, padding=1)
    axes.set_xticks(x, labels, fontsize=8)
    axes.set_ylabel(_("Cases"))
    axes.legend(fontsize=8, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def chart_categories(figures: dict) -> str:
    """The month's ten largest categories against the month before, as horizontal bars."""
    _style()
    rows = sorted(figures["categories"], key=lambda c: (-c["cases"], c["code"]))[:10][::-1]
    figure, axes = plt.subplots(figsize=(7.2, 0.32 * max(len(rows), 3) + 0.6))
    y = np.arange(len(rows))
    axes.barh(y + 0.2, [r["cases"] for r in rows], 0.4, color="#c0392b", label=figures["month"])
    axes.barh(y - 0.2, [r["before"] for r in rows], 0.4, color="#e6a23c", label=figures["previous_month"])
    axes.set_yticks(y, [localized(r["name"], r["name_en"]) for r in rows], fontsize=8)
    axes.set_xlabel(_("Cases"))
    axes.legend(fontsize=8, frameon=False, loc="lower right")
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def chart_satisfaction(figures: dict) -> str:
    """The month's ratings, 1 to 5."""
    _style()
    rows = figures["satisfaction"]["distribution"]
    figure, axes = plt.subplots(figsize=(3.6, 2.4))
    bars = axes.bar([str(r["score"]) for r in rows], [r["cases"] for r in rows],
                    color=["#b2182b", "#ef8a62", "#cccccc", "#67a9cf", "#2166ac"])  # fmt: skip
    axes.bar_label(bars, fontsize=7, padding=1)
    axes.set_xlabel(_("Rating"))
    axes.set_ylabel(_("Cases"))
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


# --- maps -----------------------------------------------------------------------------------------


def _patches(wkbs: list[bytes]) -> list[PolygonPatch]:
    patches = []
    for geometry in shapely.from_wkb(wkbs) if wkbs else []:
        parts = geometry.geoms if hasattr(geometry, "geoms") else [geometry]
        for part in parts:
            patches.append(PolygonPatch(np.asarray(part.exterior.coords)[:, :2], closed=True))
    return patches


def _frame(data: MapData, title: str) -> tuple[Figure, object, tuple[float, float, float, float]]:
    figure, axes = plt.subplots(figsize=(3.6, 3.2))
    # The governed town (its grids) fills the frame; the outline may run beyond it.
    geometries = shapely.from_wkb(data.grids or data.outlines) if (data.grids or data.outlines) else []
    if len(geometries):
        xmin, ymin, xmax, ymax = shapely.total_bounds(geometries)
    else:
        xmin, ymin, xmax, ymax = 103.6, 35.9, 104.0, 36.2
    pad_x, pad_y = (xmax - xmin) * 0.03 or 0.01, (ymax - ymin) * 0.03 or 0.01
    bounds = (xmin - pad_x, ymin - pad_y, xmax + pad_x, ymax + pad_y)
    axes.set_xlim(bounds[0], bounds[2])
    axes.set_ylim(bounds[1], bounds[3])
    axes.set_aspect(1 / np.cos(np.radians((ymin + ymax) / 2)))
    axes.set_title(title, fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])
    return figure, axes, bounds


def _outline(axes, data: MapData) -> None:
    axes.add_collection(PatchCollection(_patches(data.grids), facecolor="none", edgecolor="#c8ced6", linewidth=0.25))
    axes.add_collection(PatchCollection(_patches(data.outlines), facecolor="none", edgecolor="#34495e", linewidth=0.9))


def map_heat(data: MapData, family: str) -> str:
    """The month's cases of ``family`` as a blurred density over the grids."""
    _style()
    figure, axes, (x0, y0, x1, y1) = _frame(data, _("Heat: %(family)s") % {"family": family_label(family)})
    xs, ys = (np.asarray(v, dtype=float) for v in data.points[family])
    if len(xs):
        counts, _x, _y = np.histogram2d(ys, xs, bins=(160, 160), range=((y0, y1), (x0, x1)))
        surface = gaussian_filter(counts, sigma=2.0)
        surface = np.ma.masked_less(surface, surface.max() * 0.04 if surface.max() > 0 else 1)
        axes.imshow(surface, extent=(x0, x1, y0, y1), origin="lower", cmap="YlOrRd", alpha=0.85, aspect="auto")
    _outline(axes, data)
    axes.text(0.01, 0.01, _("%(n)s cases") % {"n": len(xs)}, transform=axes.transAxes, fontsize=7)
    return _png(figure)


def map_hotspots(data: MapData, family: str) -> str:
    """Each small grid coloured by its Gi* class for the month's cases of ``family``."""
    _style()
    figure, axes, _bounds = _frame(data, _("Hot spots (Gi*): %(family)s") % {"family": family_label(family)})
    classes = data.hotspots.get(family, {})
    colours, patches = [], []
    for grid_id, wkb in zip(data.grid_ids, data.grids, strict=True):
        for patch in _patches([wkb]):
            patches.append(patch)
            colours.append(HOT_COLOURS[classes.get(grid_id, "not_significant")])
    axes.add_collection(PatchCollection(patches, facecolor=colours, edgecolor="#c8ced6", linewidth=0.2))
    axes.add_collection(PatchCollection(_patches(data.outlines), facecolor="none", edgecolor="#34495e", linewidth=0.9))
    hot = sum(1 for c in classes.values() if c.startswith("hot"))
    axes.text(0.01, 0.01, _("%(n)s hot-spot grids (95 %% or 99 %%)") % {"n": hot}, transform=axes.transAxes, fontsize=7)
    return _png(figure)


def map_warnings(data: MapData, codes: set[str]) -> str:
    """The grids an early warning names (either family), over all grids."""
    _style()
    figure, axes, _bounds = _frame(data, _("Early-warning grids"))
    _outline(axes, data)
    flagged = [wkb for code, wkb in zip(data.grid_codes, data.grids, strict=True) if code in codes]
    axes.add_collection(PatchCollection(_patches(flagged), facecolor="#c0392b", edgecolor="#7b241c", linewidth=0.6))
    axes.text(0.01, 0.01, _("%(n)s grids warned") % {"n": len(flagged)}, transform=axes.transAxes, fontsize=7)
    return _png(figure)


# --- the document ---------------------------------------------------------------------------------

#: The headline table: (key, label, a share?) in the order the report prints them.
HEADLINE = (
    ("cases", gettext_noop("Cases received"), False),
    ("completed", gettext_noop("Completed (resolved, verified or closed)"), False),
    ("completion_rate", gettext_noop("Completion rate"), True),
    ("on_time_rate", gettext_noop("On-time rate"), True),
    ("overdue", gettext_noop("Overdue"), False),
    ("escalated", gettext_noop("Escalated"), False),
    ("open", gettext_noop("Still open"), False),
    ("satisfaction_mean", gettext_noop("Mean satisfaction (1–5)"), False),
    ("satisfaction_rate", gettext_noop("Satisfied (4 or 5)"), True),
    ("disputes", gettext_noop("Disputes"), False),
    ("hazards", gettext_noop("Safety hazards"), False),
)


def _show(value, share: bool) -> str:
    if value is None:
        return "—"
    if share:
        return pct(value)
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"


def _delta(now, before, share: bool) -> str:
    if now is None or before is None:
        return "—"
    if share:
        points = (now - before) * 100
        return signed(round(points, 1)) + _(" pp")
    return signed(round(now - before, 2))


def headline_rows(headline: dict) -> list[dict]:
    """The headline table's rows, formatted: the month, the month before and the same month a
    year before, with the changes."""
    month, previous, last_year = headline["month"], headline["previous"], headline["last_year"]
    return [
        {
            "key": key,
            "label": _(label),
            "month": _show(month[key], share),
            "previous": _show(previous[key], share),
            "change": _delta(month[key], previous[key], share),
            "last_year": _show(last_year[key], share),
            "change_year": _delta(month[key], last_year[key], share),
        }
        for key, label, share in HEADLINE
    ]


def report_context(*, figures: dict, maps: MapData) -> dict:
    """What the report's templates read: the figures, the formatted headline table, the charts
    and maps as ``data:`` URIs, and the labelled rows, in the active language."""
    warned = {w["code"] for rows in maps.warnings.values() for w in rows}
    images = {
        "channels": chart_channels(figures),
        "categories": chart_categories(figures),
        "satisfaction": chart_satisfaction(figures),
        "heat_dispute": map_heat(maps, "dispute"),
        "heat_hazard": map_heat(maps, "hazard"),
        "hot_dispute": map_hotspots(maps, "dispute"),
        "hot_hazard": map_hotspots(maps, "hazard"),
        "warnings": map_warnings(maps, warned),
    }
    return {
        "f": figures,
        "h": figures["headline"],
        "headline": headline_rows(figures["headline"]),
        "images": images,
        "channels": [dict(row, label=channel_label(row["channel"])) for row in figures["channels"]],
        "families": [dict(row, label=family_label(row["family"])) for row in figures["families"]],
        "warnings": [dict(w, family=family_label(family)) for family, rows in maps.warnings.items() for w in rows],
        "hot_counts": {
            family: sum(1 for c in classes.values() if c.startswith("hot")) for family, classes in maps.hotspots.items()
        },
    }


def report_html(context: dict) -> str:
    """The whole report as one self-contained HTML document (``context``: :func:`report_context`)."""
    return render_to_string("layers/judgement_report.html", context)


def report_pdf(html: str) -> bytes:
    """The HTML document printed to PDF by WeasyPrint (A4, the document's own styles)."""
    from PIL import ImageFile
    from weasyprint import HTML

    # Importing WeasyPrint tells Pillow, for the whole process, to accept truncated images; the
    # grid workers' and residents' photo checks rely on Pillow refusing them. The report's own
    # pictures are drawn whole by this server and need no such tolerance.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return HTML(string=html).write_pdf()
