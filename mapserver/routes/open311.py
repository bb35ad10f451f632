"""Open311 GeoReport v2 (``mapserver/views/open311.py``).

The extension (.json or .xml) picks the format. Service codes hold dots (hazard.fire.json): the
greedy code pattern leaves only the last extension to the format."""

from django.urls import path

from ..views import open311

app_name = "open311"

urlpatterns = [
    path("open311/v2/services.<str:fmt>", open311.Services.as_view(), name="services"),
    path("open311/v2/services/<str:code>.<str:fmt>", open311.ServiceDefinition.as_view(), name="service"),
    path("open311/v2/requests.<str:fmt>", open311.Requests.as_view(), name="requests"),
    path("open311/v2/requests/<str:pk>.<str:fmt>", open311.RequestDetail.as_view(), name="request"),
]
