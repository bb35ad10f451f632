"""Thin views: parse → select or act → serialise → respond."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers import selectors


def home(request: HttpRequest) -> HttpResponse:
    """The front door: what the platform holds and where each user goes."""
    return render(request, "mapserver/home.html", {"counts": selectors.registry_counts()})


class WhoAmI(APIView):
    """The caller as the API sees them: proves session and token auth work."""

    def get(self, request: Request) -> Response:
        user = request.user
        return Response({"username": user.get_username(), "roles": sorted(g.name for g in user.groups.all())})
