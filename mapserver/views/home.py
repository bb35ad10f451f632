"""Thin views: parse → select or act → serialise → respond."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers import selectors
from layers.protection.scope import scope_describe
from layers.services import users

#: The front door's entry points (path, who, what), from DESIGN.md §5. Only those the URL map
#: serves are listed, so the page never links to something that is not there yet.
ENTRY_POINTS = (
    ("/report/", _("Residents"), _("小兰帮办: report a problem, follow it, rate the result; no account needed")),
    ("/public/", _("The public"), _("What the city solves: cases by grid, response times by street, resolved cases")),
    ("/wall/", _("Command center"), _("The map wall: the city at a glance, events, heat maps")),
    ("/grid/", _("Grid worker"), _("My grid: buildings, residents, events")),
    ("/analyst/", _("Analyst"), _("The layer catalog, filters, exports")),
    ("/moderation/", _("Command center"), _("Public summaries: write and approve")),
    ("/imports/", _("Data steward"), _("Import divisions, boundaries, grids, addresses, persons, units: dry run, rejection report, commit")),
    ("/admin/", _("Data steward"), _("Divisions, grids, addresses, buildings, persons and units, with maps")),
    ("/api/whoami", "JSON API", _("Who am I: a session login or Authorization: Token <key>")),
    ("/api/schema/", "OpenAPI", _("The API's description")),
    ("/open311/v2/discovery.json", "Open311 GeoReport v2", _("Intake from other systems")),
    ("/ogc/", "OGC API Features", _("For QGIS and other GIS clients")),
)  # fmt: skip


def _served(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def home(request: HttpRequest) -> HttpResponse:
    """The front door: what the platform holds, where each user goes and, in development,
    the demo logins."""
    context = {
        "counts": selectors.registry_counts(),
        "entry_points": [entry for entry in ENTRY_POINTS if _served(entry[0])],
        "demo_logins": users.demo_users_list() if settings.DEBUG else [],
    }
    return render(request, "mapserver/home.html", context)


_CODES = serializers.ListField(child=serializers.CharField())


class WhoAmI(APIView):
    """The caller as the API sees them: proves session and token auth work, and tells a client
    which part of the city the caller may read."""

    @extend_schema(
        operation_id="whoami",
        summary="The authenticated caller, their roles and their data scope",
        responses=inline_serializer(
            "WhoAmI",
            {
                "username": serializers.CharField(),
                "roles": serializers.ListField(child=serializers.CharField()),
                "scope": inline_serializer(
                    "WhoAmIScope",
                    {
                        "level": serializers.ChoiceField(
                            choices=["city", "district", "street", "community", "grids", "none"]
                        ),
                        "key": serializers.CharField(help_text="changes whenever the scope does"),
                        "districts": _CODES,
                        "streets": _CODES,
                        "communities": _CODES,
                        "grids": _CODES,
                    },
                ),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        reader = request.reader
        return Response(
            {
                "username": request.user.get_username(),
                "roles": list(reader.roles),
                "scope": scope_describe(reader.scope),
            }
        )
