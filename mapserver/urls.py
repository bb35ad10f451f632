"""URL map of the HTTP edge."""

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from .views import events, geocode, home, locate, tiles
from .views import open311 as georeport

urlpatterns = [
    path("", home.home, name="home"),
    path("admin/", admin.site.urls),
    # The schema is public: intake systems read it before they have a token.
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="api-schema"),
    path("api/whoami", home.WhoAmI.as_view(), name="api-whoami"),
    path("api/locate", locate.Locate.as_view(), name="api-locate"),
    path("api/geocode", geocode.Geocode.as_view(), name="api-geocode"),
    path("api/events", events.EventList.as_view(), name="api-events"),
    path("api/events/<int:event_id>", events.EventDetail.as_view(), name="api-event"),
    path("api/events/<int:event_id>/actions", events.EventActions.as_view(), name="api-event-actions"),
]

# Open311 GeoReport v2; the extension (.json or .xml) picks the format. Service codes hold dots
# (hazard.fire.json): the greedy code pattern leaves only the last extension to the format.
urlpatterns += [
    path("open311/v2/services.<str:fmt>", georeport.Services.as_view(), name="open311-services"),
    path("open311/v2/services/<str:code>.<str:fmt>", georeport.ServiceDefinition.as_view(), name="open311-service"),
    path("open311/v2/requests.<str:fmt>", georeport.Requests.as_view(), name="open311-requests"),
    path("open311/v2/requests/<str:pk>.<str:fmt>", georeport.RequestDetail.as_view(), name="open311-request"),
]

# The layer catalog and the basemaps (issue 4).
from .views import basemaps as basemap_views  # noqa: E402
from .views import catalog  # noqa: E402

urlpatterns += [
    path("api/layers", catalog.LayerCatalog.as_view(), name="api-layers"),
    path("basemaps/", basemap_views.basemap_list, name="basemaps"),
    # <path:name> so that a name with "../" in it reaches the view and gets its 400.
    path("basemaps/<path:name>/<str:z>/<str:x>/<str:y>.<str:ext>", basemap_views.basemap_tile, name="basemap-tile"),
]

# Vector tiles of the catalog layers. z/x/y are matched as text so that a bad one gets a 400
# naming it (an int converter would answer a bare 404).
urlpatterns += [
    path("tiles/", tiles.TileIndex.as_view(), name="tiles-index"),
    path("tiles/<str:layer>.json", tiles.TileJSON.as_view(), name="tiles-tilejson"),
    path("tiles/<str:layer>/<str:z>/<str:x>/<str:y>.pbf", tiles.tile, name="tiles-tile"),
]

# OGC API – Features (mapserver/views/ogc.py) and layer exports, named by catalog layer id.
from .views import exports, ogc  # noqa: E402

urlpatterns += [
    path("ogc/", ogc.Landing.as_view(), name="ogc-landing"),
    path("ogc/conformance", ogc.Conformance.as_view(), name="ogc-conformance"),
    path("ogc/collections", ogc.Collections.as_view(), name="ogc-collections"),
    path("ogc/collections/<str:collection>", ogc.Collection.as_view(), name="ogc-collection"),
    path("ogc/collections/<str:collection>/items", ogc.Items.as_view(), name="ogc-items"),
    path("ogc/collections/<str:collection>/items/<str:feature_id>", ogc.Item.as_view(), name="ogc-item"),
    # Before the layer exports, so that "grid" is never read as a layer id.
    path("exports/grid/<str:code>.html", exports.PrintMap.as_view(), name="export-print-map"),
    path("exports/<str:layer_id>.<str:fmt>", exports.Export.as_view(), name="export"),
]

# Unknown paths and unexpected failures render through the one error tree: JSON under the API
# prefixes, a page elsewhere, never a traceback.
handler404 = "mapserver.errors.page_not_found"
handler500 = "mapserver.errors.server_error"

# Heat maps and hot spots, put first: /exports/heat.tif must win over /exports/<layer>.<format>
# (the .png suffix already keeps /tiles/heat/… apart from the vector tiles).
from .views import heat as heat_views  # noqa: E402

urlpatterns[:0] = [
    path("tiles/heat/<str:z>/<str:x>/<str:y>.png", heat_views.HeatTile.as_view(), name="heat-tile"),
    path("exports/heat.tif", heat_views.HeatGeoTiff.as_view(), name="heat-geotiff"),
    path("api/hotspots", heat_views.Hotspots.as_view(), name="api-hotspots"),
    path("api/early-warnings", heat_views.EarlyWarnings.as_view(), name="api-early-warnings"),
]
