"""URL map of the HTTP edge: one module per area under ``mapserver/routes/``.

Each area is a namespace: a URL is named ``<area>:<name>`` (``api:event``, ``ogc:items``,
``wall:page``). The routes keep their full paths in the area modules (included under ""), so the
patterns seen by the metrics' route label and the schema are the paths themselves.

No path is matched by routes of two areas, so the order of the areas below is reading order
only; keep it so (a new route that another area's pattern also matches belongs in that area's
module). Where order does matter it is settled inside one module: ``exports`` lists
``exports/heat.tif`` before ``exports/<layer_id>.<fmt>``, which would take it for a layer.
``tests/mapserver/test_urls.py`` resolves those paths.
"""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("mapserver.routes.pages")),
    path("admin/", admin.site.urls),
    path("", include("mapserver.routes.operations")),
    path("", include("mapserver.routes.api")),
    path("", include("mapserver.routes.open311")),
    path("", include("mapserver.routes.ogc")),
    path("", include("mapserver.routes.tiles")),
    path("", include("mapserver.routes.exports")),
    path("", include("mapserver.routes.wall")),
    path("", include("mapserver.routes.grid")),
    path("", include("mapserver.routes.residents")),
    path("", include("mapserver.routes.stewards")),
    path("", include("mapserver.routes.judgement")),
]

# Unknown paths and unexpected failures render through the one error tree: JSON under the API
# prefixes, a page elsewhere, never a traceback.
handler404 = "mapserver.errors.page_not_found"
handler500 = "mapserver.errors.server_error"
