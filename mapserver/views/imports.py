"""The import page ``/imports/`` and its API, for data stewards and administrators.

| path | does |
|---|---|
| ``GET /api/imports`` | the recent jobs, newest first |
| ``POST /api/imports`` | multipart: ``kind``, ``file`` and the importer's options → 201, a queued dry run |
| ``GET /api/imports/<id>`` | one job: status, progress, counts, first rejections, topology problems, links |
| ``POST /api/imports/<id>/commit`` | ``max_rejected`` (rows or N%), ``accept_topology`` → 201, the queued commit |
| ``GET /api/imports/<id>/report.csv`` | the rejection report (audited: it may hold names) |
| ``GET /api/imports/<id>/preview.geojson`` | the dry run's map preview |

Jobs run in the background (``manage.py run_import_jobs``, started by ``make run``), so an
import goes on when the browser closes. Who may import is decided in one place,
:data:`IMPORT_ROLES` (the API's permission :data:`MAY_IMPORT` and the page's).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from basemaps.sources import basemaps_configured
from importers import jobs
from importers.models import ImportJob
from importers.sources import open_output
from layers.protection.audit import audit_record
from layers.services.users import Role

from .. import params
from ..auth import roles_required
from ..errors import BadParameter, NotFound
from ..schema import error_response
from .heat import reject_unknown
from .pages import page_for

#: The roles that may import (administrators and superusers always may).
IMPORT_ROLES = (Role.DATA_STEWARD,)


#: The import API's rule: data stewards and administrators (403 for other users).
MAY_IMPORT = roles_required(*IMPORT_ROLES, message=gettext_lazy("imports are for data stewards and administrators"))


class ImportView(APIView):
    permission_classes = [MAY_IMPORT]


def _links(job: ImportJob) -> dict[str, str]:
    links = {"self": reverse("stewards:api-import", args=[job.pk])}
    if job.has_report:
        links["report"] = reverse("stewards:api-import-report", args=[job.pk])
    if job.has_preview:
        links["preview"] = reverse("stewards:api-import-preview", args=[job.pk])
    if job.action == ImportJob.Action.DRY_RUN:
        links["commit"] = reverse("stewards:api-import-commit", args=[job.pk])
    return links


def describe(job: ImportJob) -> dict:
    return jobs.import_job_describe(job, urls=_links(job))


def _job(job_id: int) -> ImportJob:
    job = jobs.import_job_get(job_id=job_id)
    if job is None:
        raise NotFound(_("no import job %(id)s") % {"id": job_id})
    return job


ERROR = error_response("error.message names the field (400), the missing role (403) or the job's state (409)")


class ImportList(ImportView):
    """Upload a file for a dry run; list the recent jobs."""

    parser_classes = [MultiPartParser, FormParser]
    #: Uploads may be larger than other requests (mapserver.security reads this).
    request_max_bytes_setting = "MINQING_IMPORT_MAX_BYTES"

    @extend_schema(operation_id="imports_list", summary="Recent import jobs", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        reject_unknown(request.query_params, ())
        return Response({"results": [describe(job) for job in jobs.import_jobs_recent()]})

    @extend_schema(
        operation_id="imports_create",
        summary="Upload a file and queue its dry run",
        request={
            "multipart/form-data": inline_serializer(
                "ImportUpload",
                {
                    "kind": serializers.ChoiceField(choices=list(jobs.KINDS)),
                    "file": serializers.FileField(help_text="CSV, XLSX, GeoJSON, zipped Shapefile or GeoPackage"),
                },
            )
        },
        responses={201: OpenApiTypes.OBJECT, 400: ERROR, 403: ERROR, 413: ERROR},
    )
    def post(self, request: Request) -> Response:
        form = request.data
        kind = params.parse_choice(form, "kind", jobs.KINDS)
        importer = jobs.importer_class(kind)
        reject_unknown(form, ("kind", "file", *(option.name for option in importer.options)))
        upload = request.FILES.get("file")
        if upload is None:
            raise BadParameter("file", "is required: the file to import")
        options = params.parse_importer_options(form, importer.options)
        job = jobs.import_job_create(kind=kind, upload=upload, options=options, user=request.user)
        return Response(describe(job), status=201, headers={"Location": reverse("stewards:api-import", args=[job.pk])})


class ImportDetail(ImportView):
    @extend_schema(operation_id="imports_read", summary="One import job", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, job_id: int) -> Response:
        return Response(describe(_job(job_id)))


_COMMIT = inline_serializer(
    "ImportCommitIn",
    {
        "max_rejected": serializers.RegexField(
            r"^([0-9]{1,9}|(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)%)$",
            required=False,
            help_text="rejected rows accepted: a number (25) or a percentage of the rows read (2.5%); default 0",
        ),
        "accept_topology": serializers.ChoiceField(
            choices=["true", "false", "1", "0", "on", "off", "yes", "no"], required=False
        ),
    },
)


class ImportCommit(ImportView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        operation_id="imports_commit",
        summary="Queue the commit of a dry run, with the rejected rows and topology problems accepted",
        request={media: _COMMIT for media in ("application/json", "application/x-www-form-urlencoded")},
        responses={201: OpenApiTypes.OBJECT, 400: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
    )
    def post(self, request: Request, job_id: int) -> Response:
        form = request.data
        if not isinstance(form, Mapping):
            raise BadParameter("body", 'must be a JSON object or a form, such as {"max_rejected": "25"}')
        reject_unknown(form, ("max_rejected", "accept_topology"))
        max_rejected = params.parse_rejection_limit(form, "max_rejected")
        accept_topology = params.parse_bool(form, "accept_topology", default=False)
        job = jobs.import_job_commit(
            dry_run=_job(job_id), user=request.user, max_rejected=max_rejected, accept_topology=accept_topology
        )
        return Response(describe(job), status=201, headers={"Location": reverse("stewards:api-import", args=[job.pk])})


class ImportReportFile(ImportView):
    @extend_schema(operation_id="imports_report", summary="The rejection report (CSV)", responses={200: bytes})
    def get(self, request: Request, job_id: int) -> HttpResponse:
        job = _job(job_id)
        path = jobs.report_file(job)
        if path is None:
            raise NotFound(_("import job %(id)s rejected no row") % {"id": job.pk})
        audit_record(action="import.report", target=f"import:{job.pk}", detail={"file": job.file_name})
        stem = job.file_name.rsplit(".", 1)[0]
        return FileResponse(
            open_output(path),
            as_attachment=True,
            filename=f"{job.kind}-{stem}-{job.pk}-rejected.csv",
            content_type="text/csv; charset=utf-8",
        )


class ImportPreview(ImportView):
    @extend_schema(operation_id="imports_preview", summary="The dry run's map preview", responses={200: bytes})
    def get(self, request: Request, job_id: int) -> HttpResponse:
        job = _job(job_id)
        path = jobs.preview_file(job)
        if path is None:
            raise NotFound(_("import job %(id)s has no map preview") % {"id": job.pk})
        return FileResponse(open_output(path), content_type="application/geo+json")


@page_for(*IMPORT_ROLES)
def import_page(request: HttpRequest) -> HttpResponse:
    """The page: an upload form per kind (options as the importer declares them), the job list
    and one job's dry run, report, map preview and commit. Everything live comes from the API."""
    basemap = next(iter(basemaps_configured().values()), None)
    kinds = [
        {
            "kind": kind,
            "formats": list(jobs.importer_class(kind).formats),
            "options": [
                {
                    "name": option.name,
                    "label": option.label,
                    "kind": option.kind,
                    "choices": list(option.choices),
                    "required": option.required,
                    "default": option.default,
                }
                for option in jobs.importer_class(kind).options
            ],
            "topology": jobs.importer_class(kind).checks_topology,
        }
        for kind in jobs.KINDS
    ]
    config = {
        "center": settings.LEAFLET_CONFIG["DEFAULT_CENTER"],
        "zoom": settings.LEAFLET_CONFIG["DEFAULT_ZOOM"],
        "basemap": basemap.describe() if basemap is not None else None,
        "kinds": kinds,
        "maxBytes": settings.MINQING_IMPORT_MAX_BYTES,
        "urls": {"jobs": reverse("stewards:api-imports")},
    }
    return render(request, "mapserver/imports/imports.html", {"imports_config": config, "kinds": kinds})
