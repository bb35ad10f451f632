"""The URL map by area (mapserver/routes/): every named route is in its area's namespace, the
paths whose order matters resolve to the view they always did, and a route's metrics label is
its whole pattern, as if the map were one flat list."""

from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from mapserver import routes
from mapserver.views import events, exports, heat, ogc, personal, rules, tiles

#: One route module per area in mapserver/routes/, its app_name the namespace.
AREAS = {
    "api",
    "exports",
    "grid",
    "judgement",
    "ogc",
    "open311",
    "operations",
    "pages",
    "residents",
    "stewards",
    "tiles",
    "wall",
}


def _named(patterns, namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _named(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}"


def test_every_named_route_is_in_an_area_namespace():
    """Outside the admin's own namespace, a URL name is <area>:<name>, with a route module per
    area."""
    names = [name for name in _named(get_resolver().url_patterns) if not name.startswith("admin:")]
    assert names
    assert {name.split(":")[0] for name in names} == AREAS
    assert all(name.count(":") == 1 for name in names)
    assert {module.stem for module in Path(routes.__file__).parent.glob("[!_]*.py")} == AREAS


@pytest.mark.parametrize(
    ("path", "view", "route"),
    [
        # exports/<layer_id>.<fmt> would take heat.tif for a layer called "heat".
        ("/exports/heat.tif", heat.HeatGeoTiff, "exports/heat.tif"),
        ("/exports/heat.geojson", exports.Export, "exports/<str:layer_id>.<str:fmt>"),
        ("/exports/grid/620102001001010101.html", exports.PrintMap, "exports/grid/<str:code>.html"),
        ("/exports/jobs/7", exports.ExportJobState, "exports/jobs/<int:job_id>"),
        ("/tiles/heat/1/2/3.png", heat.HeatTile, "tiles/heat/<str:z>/<str:x>/<str:y>.png"),
        ("/tiles/heat/1/2/3.pbf", tiles.tile, "tiles/<str:layer>/<str:z>/<str:x>/<str:y>.pbf"),
        # QGIS asks for the landing page without its slash and does not follow a redirect.
        ("/ogc", ogc.Landing, "ogc"),
        ("/ogc/", ogc.Landing, "ogc/"),
        ("/api/events/7", events.EventDetail, "api/events/<int:event_id>"),
        ("/api/events/7/reveal", personal.EventReveal, "api/events/<int:event_id>/reveal"),
        (
            "/rules/7/approve",
            rules.rules_draft_act,
            r"^rules/(?P<library_id>[0-9]+)/(?P<action>replay|approve|discard)$",
        ),
    ],
)
def test_a_path_resolves_to_its_view_and_its_whole_pattern(path, view, route):
    """The route (the metrics' label) is the whole pattern, not the part inside an include."""
    match = resolve(path)
    assert (match.route, getattr(match.func, "view_class", match.func)) == (route, view)


def test_names_reverse_to_the_same_paths():
    """A few names across the areas, with the paths they have always had."""
    assert reverse("api:event", args=[7]) == "/api/events/7"
    assert reverse("ogc:items", args=["events"]) == "/ogc/collections/events/items"
    assert reverse("tiles:tile", args=["events", 1, 2, 3]) == "/tiles/events/1/2/3.pbf"
    assert reverse("exports:layer", args=["events", "csv"]) == "/exports/events.csv"
    assert reverse("wall:page") == "/wall/"
    assert reverse("judgement:rules-draft-act", args=[7, "replay"]) == "/rules/7/replay"
    assert reverse("pages:set_language") == "/i18n/setlang/"
