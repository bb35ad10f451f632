"""``GET /api/geocode``: address text → ranked standard addresses with score and precision.

Only the standard addresses of the reader's data scope are candidates (an address in another
grid is not offered to a grid worker); regions matched at admin precision are reference data.
"""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers.geocoding.addresses import address_geocode
from layers.geocoding.matcher import PRECISIONS

from .. import params
from ..schema import TEXT_PATTERN, integer_parameter, text_parameter

#: Longest address text accepted; real addresses stay well under 100 characters.
MAX_QUERY_LENGTH = 200


def _area(name: str) -> serializers.Serializer:
    return inline_serializer(
        name=f"GeocodeArea_{name}",
        fields={"code": serializers.CharField(), "name": serializers.CharField()},
        allow_null=True,
    )


GEOCODE_RESPONSE = inline_serializer(
    name="Geocode",
    fields={
        "query": serializers.CharField(),
        "normalized": serializers.CharField(help_text="half-width, digits for Chinese numerals, one unit word each"),
        "parsed": serializers.DictField(child=serializers.CharField(), help_text="components the parser found"),
        "matched": serializers.BooleanField(),
        "no_match_reason": serializers.CharField(help_text="empty when matched"),
        "ambiguous": serializers.BooleanField(
            help_text="no match because candidates in several small grids (or regions) are equally likely"
        ),
        "method": serializers.CharField(
            help_text="road_door, road, compound, each with _typo when a name was read through a typo; admin"
        ),
        "candidates": inline_serializer(
            name="GeocodeCandidate",
            many=True,
            fields={
                "code": serializers.CharField(help_text="standard address code (a region code at admin precision)"),
                "full_text": serializers.CharField(),
                "score": serializers.FloatField(help_text="0–100"),
                "precision": serializers.ChoiceField(choices=list(PRECISIONS)),
                "lon": serializers.FloatField(allow_null=True),
                "lat": serializers.FloatField(allow_null=True),
                "agrees": serializers.ListField(
                    child=serializers.CharField(), help_text="components of the text this candidate has"
                ),
                "differs": serializers.ListField(
                    child=serializers.CharField(), help_text="components of the text this candidate does not have"
                ),
                "grids": inline_serializer(
                    name="GeocodeGrids",
                    fields={
                        level: _area(level)
                        for level in ("district", "street", "community", "grid_large", "grid_medium", "grid_small")
                    },
                    help_text="the candidate's areas; a level is null where the address has no link to one (grids at admin precision)",
                ),
            },
        ),
    },
)


class Geocode(APIView):
    """Address text → standard addresses."""

    @extend_schema(
        summary="Geocode a Chinese address text to standard addresses",
        description=(
            "Normalises the text (full-width digits, Chinese numerals, 號/号, 栋/幢/号楼/座, 单元/门, 室/房, 弄/巷), "
            "reads the address out of the text (a sentence around it is left out), ranks standard addresses by "
            "a weighted score with the precision reached (room, building, door, compound, road, community, "
            "street, district, city) and says which components agree. A text naming a place elsewhere in China, "
            "or whose best candidates lie in several small grids, answers no match with the reason."
        ),
        parameters=[
            text_parameter("q", pattern=TEXT_PATTERN, max_length=MAX_QUERY_LENGTH, required=True),
            integer_parameter("limit", 1, 20, description="candidates, default 5"),
        ],
        responses={200: GEOCODE_RESPONSE},
    )
    def get(self, request: Request) -> Response:
        text = params.parse_text(request.query_params, "q", max_length=MAX_QUERY_LENGTH)
        limit = params.parse_int(request.query_params, "limit", low=1, high=20, default=5)
        answer = address_geocode(text=text, limit=limit, scope=request.reader.scope)
        body = asdict(answer) | {"matched": answer.matched}
        return Response(body)
