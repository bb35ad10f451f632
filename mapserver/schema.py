"""The OpenAPI schema's shared parts: the error answers every operation may give.

Every error goes through one tree (:mod:`mapserver.errors`), so every operation shares the same
error shapes; :func:`error_responses`, a drf-spectacular post-processing hook, declares them once
for the whole schema instead of in each view:

* the JSON API: ``{"error": {"code", "message", …}}`` for 400, 401, 403, 404, 405, 406, 415,
  422 and 429, and 503 (database unavailable, with ``Retry-After``);
* GeoReport (``/open311/``): its list of ``{code, description}``, in JSON or XML as the path's
  extension asks.

A view that declares a status itself (with a narrower description) keeps its declaration.
"""

from __future__ import annotations

import threading

from django.utils.translation import get_language
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from layers.models import Event
from layers.taxonomy import CATEGORIES

#: Statuses any operation may answer through the error tree, and what each means.
ERROR_STATUSES = {
    "400": "a parameter or the body is malformed; error.parameter names it",
    "401": "no or bad credentials (session or `Authorization: Token <key>`)",
    "403": "the user may not do this",
    "404": "no such resource",
    "405": "the method is not allowed on this path",
    "406": "no answer in a media type the Accept header allows",
    "415": "the body's media type is not accepted",
    "422": "an Idempotency-Key sent again with another request",
    "429": "too many requests; retry after Retry-After seconds",
    "503": "the database is unavailable; retry after Retry-After seconds (a write with the same Idempotency-Key)",
}
#: Statuses whose answer tells the client when to retry.
RETRY_STATUSES = ("429", "503")

ERROR_SCHEMA = {
    "type": "object",
    "description": "An error from the one error tree (mapserver.errors); never a traceback.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "machine code, e.g. bad_parameter"},
                "message": {"type": "string", "description": "for the user; names the field"},
                "parameter": {"type": "string", "description": "the request field at fault, when one is"},
            },
            "required": ["code", "message"],
            # Some errors carry context (a 409's status and allowed actions, a 422's parameter).
            "additionalProperties": True,
        }
    },
    "required": ["error"],
}
GEOREPORT_ERRORS_SCHEMA = {
    "type": "array",
    "description": "GeoReport v2 errors: the code is the HTTP status.",
    "items": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
        "required": ["code", "description"],
    },
}
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer", "minimum": 1}}
}
#: The error tree's answer as a serializer, for a view that describes its error statuses in its
#: own words (the post-processing hook below declares the rest). One component for all views.
ERROR_ANSWER = inline_serializer(
    name="ErrorAnswer",
    fields={
        "error": inline_serializer(
            name="ErrorAnswerBody", fields={"code": serializers.CharField(), "message": serializers.CharField()}
        )
    },
)


def error_response(description: str) -> OpenApiResponse:
    """An error answer of the one tree, described for the operation at hand."""
    return OpenApiResponse(ERROR_ANSWER, description=description)


#: Path prefix of the GeoReport endpoints (their own error shape, JSON or XML).
GEOREPORT_PREFIX = "/open311/"


def _error_content(path: str) -> dict:
    if path.startswith(GEOREPORT_PREFIX):
        return {
            "application/json": {"schema": {"$ref": "#/components/schemas/GeoReportErrors"}},
            "text/xml": {"schema": {"type": "string", "description": "<errors><error><code/><description/>…"}},
        }
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def error_responses(result: dict, generator, request, public: bool) -> dict:
    """drf-spectacular ``POSTPROCESSING_HOOKS`` entry: add the error tree's shapes to every
    operation, for each status in :data:`ERROR_STATUSES` the operation does not declare itself."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    schemas.setdefault("GeoReportErrors", GEOREPORT_ERRORS_SCHEMA)
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if path.startswith("/open311/") and operation is operations.get("get") and operation.get("security"):
                # GeoReport reads need no key (only published cases are read without one): the
                # key is optional, which OpenAPI says with an empty requirement.
                operation["security"] = [*operation["security"], {}]
            _years_declared(operation.get("parameters", []))
            responses = operation["responses"]
            for status, description in ERROR_STATUSES.items():
                if status not in responses:
                    responses[status] = {"description": description, "content": _error_content(path)}
                if status in RETRY_STATUSES:
                    responses[status].setdefault("headers", {}).update(_RETRY_AFTER)
    components = result["components"].get("schemas", {})
    _years_declared(components)
    for name in CLOSED_BODIES:
        if name in components:
            # The view refuses a field it does not read (400 naming it).
            components[name]["additionalProperties"] = False
    return result


#: Request bodies whose view refuses any field it does not read.
CLOSED_BODIES = ("ImportCommitIn",)


def _years_declared(node) -> None:
    """Every date and date-time in the schema says the years the parsers take (a pattern on the
    year), so that a generated client never sends year 52 or 9999."""
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("format") in ("date", "date-time") and "pattern" not in node:
            node["pattern"] = YEARS_PATTERN
        for value in node.values():
            _years_declared(value)
    elif isinstance(node, list):
        for value in node:
            _years_declared(value)


class GeoReportApiKeyScheme(OpenApiAuthenticationExtension):
    """GeoReport's ``api_key`` query parameter (a DRF token), for the schema's security list."""

    target_class = "mapserver.views.open311.ApiKeyAuthentication"
    name = "georeportApiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "apiKey", "in": "query", "name": "api_key"}


# --- parameters as the parsers check them (mapserver/params.py) ------------------------------------
# A client generated from the schema must be able to call every operation: each parameter says
# what its parser accepts (required, range, enum, pattern), so that a value the schema allows is
# one the server takes.

#: The rough box around China the point parsers hold (mapserver.params.CHINA_BOX).
CHINA_LON, CHINA_LAT = (73.0, 136.0), (3.0, 54.0)
MONTH_PATTERN = r"^(19[0-9]{2}|20[0-9]{2}|2100)-(0[1-9]|1[0-2])$"
AREA_CODE_PATTERN = r"^[0-9A-Za-z_-]{4,24}$"
REGION_CODE_PATTERN = r"^[0-9]{12}$"
GRID_CODE_PATTERN = r"^[0-9]{12}[0-9A-Za-z_-]{1,12}$"
CATEGORY_PATTERN = r"^[a-z][a-z_]*(\.[a-z][a-z_]*)*$"
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{8,60}$"
#: Text that is not blank (a blank value counts as absent) and holds no NUL (PostgreSQL refuses it).
TEXT_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
#: An Idempotency-Key: 1 to 255 visible ASCII characters but the double quote (a quoted key's
#: quotes are not part of it).
IDEMPOTENCY_KEY_PATTERN = r"^[!#-~]{1,255}$"
#: The years a date or date-time may name (mapserver.params.DATE_YEARS: 1900 to 2100).
YEARS_PATTERN = r"^(19[0-9]{2}|20[0-9]{2}|2100)-"
#: A follow-up token as issued (32 URL-safe base64 characters).
FOLLOW_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{32}$"  # noqa: S105  (a pattern, not a secret)
#: The page's id of a resident's report: a lower-case UUID.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


#: The categories a report may name: the taxonomy's (families are categories too); named
#: CategoryEnum in the schema (settings' ENUM_NAME_OVERRIDES).
CATEGORY_CODES = [row[0] for row in CATEGORIES]


def category_codes() -> list[str]:
    return list(CATEGORY_CODES)


def integer_parameter(
    name: str, low: int, high: int, *, description: str = "", required: bool = False, location: str = "query"
) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        {"type": "integer", "minimum": low, "maximum": high},
        location=location,
        required=required,
        description=description,
    )


def number_parameter(name: str, low: float, high: float, *, description: str = "", required: bool = False):
    return OpenApiParameter(
        name, {"type": "number", "minimum": low, "maximum": high}, required=required, description=description
    )


def text_parameter(
    name: str,
    *,
    pattern: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    required: bool = False,
    description: str = "",
    location: str = "query",
    format: str | None = None,
) -> OpenApiParameter:
    schema: dict = {"type": "string"}
    for key, value in (("pattern", pattern), ("minLength", min_length), ("maxLength", max_length), ("format", format)):
        if value is not None:
            schema[key] = value
    return OpenApiParameter(name, schema, location=location, required=required, description=description)


def china_point_parameters(lon: str = "lon", lat: str = "lat") -> list[OpenApiParameter]:
    """A required point inside the rough box around China (what the point parsers accept)."""
    return [
        number_parameter(lon, *CHINA_LON, required=True, description="longitude inside China"),
        number_parameter(lat, *CHINA_LAT, required=True, description="latitude inside China"),
    ]


def bbox_parameter(*, required: bool = False) -> OpenApiParameter:
    # Four numbers, minimum below maximum: more than a pattern can say; the format names it.
    return text_parameter(
        "bbox",
        format="bbox",
        required=required,
        description="lon_min,lat_min,lon_max,lat_max (WGS84 degrees, minimum below maximum)",
    )


def family_parameter() -> OpenApiParameter:
    from layers.selectors import heat

    return OpenApiParameter("family", OpenApiTypes.STR, enum=list(heat.FAMILIES), required=True)


# --- GeoReport v2 (/open311/v2/) -----------------------------------------------------------------
# The shapes of mapserver/open311.py's answers, for the views' extend_schema declarations. JSON is
# described field by field; the XML form of the same answer is declared as a string.

#: The events' statuses, named EventStatusEnum in the schema (settings' ENUM_NAME_OVERRIDES): the
#: name "status" is also GeoReport's open/closed.
EVENT_STATUSES = list(Event.Status.values)

#: The answer media types of GeoReport, by path extension.
GEOREPORT_JSON, GEOREPORT_XML = "application/json", "text/xml"

GEOREPORT_FORMAT = OpenApiParameter(
    "fmt", OpenApiTypes.STR, location=OpenApiParameter.PATH, enum=["json", "xml"], description="answer format"
)

GEOREPORT_SERVICE = inline_serializer(
    name="GeoReportService",
    many=True,
    fields={
        "service_code": serializers.CharField(help_text="the dotted category code, e.g. hazard.fire"),
        "service_name": serializers.CharField(),
        "description": serializers.CharField(),
        "metadata": serializers.BooleanField(help_text="always false: no extra attributes"),
        "type": serializers.ChoiceField(choices=["realtime", "batch", "blackbox"]),
        "keywords": serializers.CharField(),
        "group": serializers.CharField(help_text="the category family"),
    },
)
GEOREPORT_SERVICE_DEFINITION = inline_serializer(
    name="GeoReportServiceDefinition",
    fields={
        "service_code": serializers.CharField(),
        "attributes": serializers.ListField(child=serializers.DictField(), help_text="always empty"),
    },
)
GEOREPORT_REQUEST = inline_serializer(
    name="GeoReportRequest",
    many=True,
    fields={
        "service_request_id": serializers.CharField(help_text="the event id"),
        "status": serializers.ChoiceField(choices=["open", "closed"]),
        "status_notes": serializers.CharField(allow_blank=True),
        "service_name": serializers.CharField(),
        "service_code": serializers.CharField(),
        "description": serializers.CharField(allow_blank=True, help_text="empty unless the reader may read it"),
        "agency_responsible": serializers.CharField(allow_blank=True),
        "service_notice": serializers.CharField(),
        "requested_datetime": serializers.DateTimeField(),
        "updated_datetime": serializers.DateTimeField(),
        "expected_datetime": serializers.DateTimeField(allow_null=True, help_text="the SLA deadline"),
        "address": serializers.CharField(allow_blank=True),
        "address_id": serializers.CharField(allow_blank=True, help_text="the matched standard address code"),
        "zipcode": serializers.CharField(allow_blank=True),
        "lat": serializers.FloatField(allow_null=True),
        "long": serializers.FloatField(allow_null=True),
        "media_url": serializers.CharField(allow_blank=True),
    },
)
GEOREPORT_RECEIPT = inline_serializer(
    name="GeoReportReceipt",
    many=True,
    fields={
        "service_request_id": serializers.CharField(),
        "service_notice": serializers.CharField(),
        "account_id": serializers.CharField(allow_null=True),
    },
)
_GEOREPORT_FORM = inline_serializer(
    name="GeoReportRequestIn",
    fields={
        "service_code": serializers.ChoiceField(choices=category_codes(), help_text="see services.json"),
        "lat": serializers.FloatField(
            required=False, min_value=CHINA_LAT[0], max_value=CHINA_LAT[1], help_text="WGS84; with long"
        ),
        "long": serializers.FloatField(
            required=False, min_value=CHINA_LON[0], max_value=CHINA_LON[1], help_text="WGS84; with lat"
        ),
        "address_string": serializers.CharField(required=False, max_length=300),
        "address_id": serializers.CharField(required=False, max_length=32, help_text="a standard address code"),
        "description": serializers.CharField(required=False, max_length=10_000),
        "first_name": serializers.CharField(required=False, max_length=25),
        "last_name": serializers.CharField(required=False, max_length=25),
        "phone": serializers.CharField(required=False, max_length=20),
        "email": serializers.CharField(required=False, help_text="accepted, not stored"),
        "device_id": serializers.CharField(required=False, help_text="accepted, not stored"),
        "account_id": serializers.CharField(required=False, max_length=64, help_text="echoed"),
        "service_request_id": serializers.CharField(
            required=False, max_length=64, help_text="the caller's ticket id: a retry returns the stored request"
        ),
        "jurisdiction_id": serializers.CharField(required=False, help_text="ignored (one city per server)"),
    },
)
GEOREPORT_FORM = {"application/x-www-form-urlencoded": _GEOREPORT_FORM, "multipart/form-data": _GEOREPORT_FORM}


def georeport_responses(shape) -> dict:
    """A GeoReport operation's 200 in JSON (``shape``) and in XML (a string)."""
    return {(200, GEOREPORT_JSON): shape, (200, GEOREPORT_XML): OpenApiTypes.STR}


class SchemaView(SpectacularAPIView):
    """``/api/schema/``, public, built once per process and language: generating it costs about
    0.7 s of CPU, which anonymous clients asking again and again would take from everyone else.
    The routes and views cannot change while a process runs, so the first answer stays right."""

    permission_classes = [AllowAny]
    built: dict[tuple, dict] = {}
    #: drf-spectacular's generator is not safe to run in two threads at once (its extension
    #: registry loads lazily): concurrent first requests wait for one build.
    building = threading.Lock()

    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        key = (get_language(), version, self.urlconf)
        schema = self.built.get(key)
        if schema is None:
            with self.building:
                schema = self.built.get(key)
                if schema is None:
                    generator = self.generator_class(urlconf=self.urlconf, api_version=version, patterns=self.patterns)
                    schema = self.built[key] = generator.get_schema(request=request, public=self.serve_public)
        response = Response(
            data=schema, headers={"Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'}
        )
        # The same for everyone: shared caches may keep it for a while.
        response["Cache-Control"] = "public, max-age=3600"
        return response
