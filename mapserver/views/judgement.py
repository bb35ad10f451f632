"""研判: the monthly situation report's page ``/judgement/`` and its endpoint
``/api/judgement/report`` (JSON figures, the HTML document or the PDF).

Glue only: the parameters go through :mod:`mapserver.params` and
:func:`layers.selectors.judgement.report_area_get` (which keeps the area inside the reader's
scope), the report is made by :mod:`layers.services.judgement`. Who may read it is
``layers.protection.access.JUDGEMENT_DUTIES["report"]``: analysts and leaders (and administrators).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers.errors import DomainError
from layers.protection.access import JUDGEMENT_DUTIES
from layers.selectors.judgement import (
    ReportArea,
    report_area_get,
    report_areas,
    report_month_check,
    report_month_default,
)
from layers.services.judgement import judgement_report_build
from layers.services.users import Role

from .. import params
from ..auth import roles_required
from ..errors import BadParameter
from ..schema import MONTH_PATTERN, error_response, text_parameter
from .heat import reject_unknown
from .pages import page_for

ROLES = tuple(Role(role) for role in sorted(JUDGEMENT_DUTIES["report"].roles))
REPORT_READERS = roles_required(*ROLES, message=gettext_lazy("Situation reports are for analysts and leaders."))
#: What the endpoint answers (``output``: DRF keeps ``format`` for its own content negotiation).
FORMATS = ("json", "html", "pdf")


def report_arguments(query: Mapping, reader) -> tuple[ReportArea, object]:
    """The area (``area``: a 12-digit code in the reader's scope, default the city) and the month
    (``month``: YYYY-MM, default the last whole month; not one that has not begun)."""
    now = timezone.now()
    code = params.parse_text(query, "area", max_length=40, default="620100000000")
    month = params.parse_month(query, "month", default=None)
    area = report_area_get(code=code.strip(), reader_scope=reader.scope)
    month = report_month_check(month, now=now) if month is not None else report_month_default(now=now)
    return area, month


def _filename(area: ReportArea, month, ext: str) -> str:
    return f"judgement-{area.code}-{month:%Y-%m}.{ext}"


class JudgementReport(APIView):
    """The monthly situation report of the city, a district or a street."""

    permission_classes = [REPORT_READERS]

    @extend_schema(
        operation_id="judgement_report",
        summary="Monthly situation report (研判报告): figures as JSON, the HTML document or the PDF",
        parameters=[
            text_parameter(
                "area",
                pattern=r"^([0-9]{12})?$",
                description="12-digit code of the city (default, also when empty), a district or a street in the "
                "reader's area",
            ),
            text_parameter(
                "month",
                pattern=MONTH_PATTERN,
                description="YYYY-MM, not one that has not begun; default the last whole month",
            ),
            OpenApiParameter("output", OpenApiTypes.STR, enum=list(FORMATS), description="json (default), html or pdf"),
        ],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/html"): OpenApiTypes.STR,
            (200, "application/pdf"): OpenApiTypes.BINARY,
            400: error_response("names the parameter"),
            403: error_response("role"),
        },
    )
    def get(self, request: Request) -> Response | HttpResponse:
        query = request.query_params
        reject_unknown(query, ("area", "month", "output"))
        fmt = params.parse_choice(query, "output", FORMATS, default="json")
        area, month = report_arguments(query, request.reader)
        report = judgement_report_build(area=area, month=month)
        if fmt == "json":
            return Response(report.figures)
        if fmt == "html":
            return HttpResponse(report.html, content_type="text/html; charset=utf-8")
        response = HttpResponse(report.pdf(), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{_filename(area, month, "pdf")}"'
        return response


@page_for(*ROLES)
def judgement_page(request: HttpRequest) -> HttpResponse:
    """The page: choose an area and a month; the report is shown under the form, with links to
    its HTML document and PDF. A bad choice is said beside the form (400), never a 500."""
    reader = request.reader
    context = {
        "areas": report_areas(reader_scope=reader.scope),
        "area": request.GET.get("area", ""),
        "month": request.GET.get("month", "") or f"{report_month_default(now=timezone.now()):%Y-%m}",
        "report": None,
        "error": None,
    }
    status = 200
    if "area" in request.GET or "month" in request.GET:
        try:
            reject_unknown(request.GET, ("area", "month"))
            area, month = report_arguments(request.GET, reader)
            context["report"] = judgement_report_build(area=area, month=month)
            context.update(context["report"].context)
            context["area"], context["month"] = area.code, f"{month:%Y-%m}"
            context["links"] = {
                fmt: f"{reverse('judgement:api-report')}?area={area.code}&month={month:%Y-%m}&output={fmt}"
                for fmt in ("html", "pdf", "json")
            }
        except (BadParameter, DomainError) as error:
            context["error"], status = error.message, 400
    context["title"] = _("Monthly situation report")
    return render(request, "mapserver/judgement/report.html", context, status=status)
