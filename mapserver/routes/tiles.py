"""Map tiles: the vector tiles of the catalog layers, the heat tiles and the basemaps.

z/x/y are matched as text so that a bad one reaches the view and gets a 400 naming it (an int
converter would answer a bare 404). The suffixes keep the patterns apart: ``tiles/heat/…`` ends
in ``.png``, a layer's tile in ``.pbf``, and ``<str:…>`` never spans a slash."""

from django.urls import path

from ..views import basemaps, heat, tiles

app_name = "tiles"

urlpatterns = [
    path("tiles/heat/<str:z>/<str:x>/<str:y>.png", heat.HeatTile.as_view(), name="heat-tile"),
    path("tiles/", tiles.TileIndex.as_view(), name="index"),
    path("tiles/<str:layer>.json", tiles.TileJSON.as_view(), name="tilejson"),
    path("tiles/<str:layer>/<str:z>/<str:x>/<str:y>.pbf", tiles.tile, name="tile"),
    path("basemaps/", basemaps.basemap_list, name="basemaps"),
    # <path:name> so that a name with "../" in it reaches the view and gets its 400.
    path("basemaps/<path:name>/<str:z>/<str:x>/<str:y>.<str:ext>", basemaps.basemap_tile, name="basemap-tile"),
]
