"""OGC API – Features (``mapserver/views/ogc.py``): the catalog layers as collections."""

from django.urls import path

from ..views import ogc

app_name = "ogc"

urlpatterns = [
    path("ogc/", ogc.Landing.as_view(), name="landing"),
    # The root without its slash too: QGIS's OAPIF provider does not follow the redirect.
    path("ogc", ogc.Landing.as_view()),
    path("ogc/api", ogc.ApiDefinition.as_view(), name="api"),
    path("ogc/api.html", ogc.ApiDocumentation.as_view(), name="api-html"),
    path("ogc/conformance", ogc.Conformance.as_view(), name="conformance"),
    path("ogc/collections", ogc.Collections.as_view(), name="collections"),
    path("ogc/collections/<str:collection>", ogc.Collection.as_view(), name="collection"),
    path("ogc/collections/<str:collection>/items", ogc.Items.as_view(), name="items"),
    path("ogc/collections/<str:collection>/items/<str:feature_id>", ogc.Item.as_view(), name="item"),
]
