"""Test-only URL map: the project's, plus views that fail unexpectedly (for the 500 handler)."""

from django.http import HttpRequest
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from mapserver.urls import handler404, handler500
from mapserver.urls import urlpatterns as project_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]


def _fail(request: HttpRequest):
    raise RuntimeError("internal detail: db-host=10.0.0.7")


@api_view(["GET"])
@permission_classes([AllowAny])
def _api_fail(request):
    raise RuntimeError("internal detail: db-host=10.0.0.7")


urlpatterns = [
    *project_urlpatterns,
    path("api/test-failure", _api_fail),
    path("page-failure/", _fail),
]
