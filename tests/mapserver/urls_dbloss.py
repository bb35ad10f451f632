"""Test-only URL map: the project's, plus views whose database session is ended while they run
(as a PostgreSQL restart does), for the 503 of a lost database."""

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from mapserver.urls import handler404, handler500
from mapserver.urls import urlpatterns as project_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]


def _lose_the_database() -> None:
    """The server ends this very session: the query fails as in-flight queries do in a restart."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        cursor.execute("SELECT 1")


@api_view(["GET"])
@permission_classes([AllowAny])
def _api_view(request):
    _lose_the_database()
    return Response({})


def _plain_view(request: HttpRequest) -> HttpResponse:
    _lose_the_database()
    return HttpResponse("")


def _alive(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT true")
        return JsonResponse({"alive": cursor.fetchone()[0]})


urlpatterns = [
    *project_urlpatterns,
    path("api/test-db-loss", _api_view),
    path("api/test-db-loss-plain", _plain_view),
    path("db-loss/", _plain_view),
    path("api/test-db-alive", _alive),
]
