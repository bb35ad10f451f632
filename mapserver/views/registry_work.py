"""The registry's upkeep and the grid workers' duty, at the HTTP edge.

* ``GET /api/grid/tasks?grid=``, ``POST /api/grid/tasks/<id>/answer``: my grid's registry tasks
  and my answer (``{"resolution", "proposal", "client_id"}``; a resend with the same client id
  gets the first answer back).
* ``GET|POST /api/grid/visits``: my visits this month; record one (走访, ``client_id``).
* ``GET /api/buildings/<code>/sheet``, ``GET /api/buildings/sheet?lon=&lat=``: the building sheet
  (楼盘表) for any signed-in reader within their scope (care tags by role).
* ``GET /api/statistics/duty?month=YYYY-MM``: the duty figures (analysts, the command centre).
* ``GET /registry/`` (data stewards): answers waiting for approval and the match rate per month;
  ``POST /registry/tasks/<id>/decide``; ``GET /api/registry/match-rate?months=``.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers.errors import DomainError
from layers.models import RegistryTask
from layers.protection.access import REGISTRY_DUTIES, VISIT_DUTIES
from layers.selectors.buildings import building_in_scope, building_sheet
from layers.selectors.duty import duty_figures, month_bounds
from layers.selectors.gridpack import worker_grid_get, worker_grids, worker_visits
from layers.selectors.registry_tasks import (
    grid_tasks,
    registry_match_rate,
    registry_task_in_grids,
    registry_task_in_scope,
    tasks_awaiting,
)
from layers.services.gridwork import SOURCES
from layers.services.idempotency import idempotent_answer, request_digest
from layers.services.registry_tasks import (
    DECISIONS,
    MAX_REASON,
    RESOLUTIONS,
    registry_task_answer,
    registry_task_decide,
)
from layers.services.visits import MAX_NOTES, visit_describe, visit_record

from .. import params
from ..auth import roles_required
from ..errors import BadParameter, NotFound
from ..parsers import BodyLeftToTheView
from ..schema import MONTH_PATTERN, china_point_parameters, error_response, integer_parameter, text_parameter
from .grid import GridWorkerView, _grid_code
from .pages import page_for

ERROR = error_response("error.message names the field (400); 404 outside your scope")
_ANY = OpenApiResponse(OpenApiTypes.OBJECT)

# --- registry tasks on the tablet -------------------------------------------------------------------


class GridTasks(GridWorkerView):
    """My grid's registry tasks: reports whose address did not match, addresses to confirm."""

    @extend_schema(
        operation_id="grid_tasks",
        summary="My grid's registry tasks (open and awaiting approval)",
        parameters=[OpenApiParameter("grid", OpenApiTypes.STR)],
        responses={200: _ANY, 403: ERROR},
    )
    def get(self, request: Request) -> Response:
        grid = worker_grid_get(reader=request.reader, code=_grid_code(request))
        return Response({"results": grid_tasks(grid_id=grid["id"], with_description=request.reader.reads_description)})


class GridTaskAnswer(GridWorkerView):
    """Answer one task: confirm, correct, merge or add."""

    parser_classes = [BodyLeftToTheView]

    @extend_schema(
        operation_id="grid_task_answer",
        summary="Answer a registry task",
        description="`{resolution: confirm|correct|merge|add, proposal: {address, into, location: {lon, lat}, "
        "fields: {road, door_number, …, full_text}}, client_id}`; 200 with the task (status done or awaiting).",
        request=OpenApiTypes.OBJECT,
        responses={200: _ANY, 400: ERROR, 404: ERROR, 409: ERROR},
    )
    def post(self, request: Request, task_id: int) -> Response:
        grid_ids = tuple(g["id"] for g in worker_grids(reader=request.reader))
        task = registry_task_in_grids(task_id=task_id, grid_ids=grid_ids)
        if task is None:
            raise NotFound(_("No registry task %(id)s in your grids.") % {"id": task_id}, parameter="task_id")
        body = params.parse_json_object(request.body)
        resolution = params.parse_choice(body, "resolution", RESOLUTIONS[task.kind])
        # The proposal is checked field by field by the service (its messages name each field).
        proposal = body.get("proposal") or {}
        if not isinstance(proposal, dict):
            raise BadParameter("proposal", _("must be an object"))
        client_id = params.parse_client_id(body, default=None)

        def produce() -> tuple[int, dict, int]:
            done = registry_task_answer(
                task=task,
                reader=request.reader,
                actor=request.user,
                resolution=resolution,
                proposal=proposal,
                grid_ids=grid_ids,
            )
            return 200, {"id": done.pk, "status": done.status, "resolution": done.resolution}, done.pk

        answer = idempotent_answer(
            owner_id=request.user.pk,
            endpoint="grid.tasks",
            key=client_id,
            digest=request_digest({"task": task.pk, "resolution": resolution, "proposal": proposal}),
            produce=produce,
        )
        response = Response(answer.body, status=answer.status)
        if answer.replayed:
            response["Idempotent-Replay"] = "true"
        return response


# --- visits ---------------------------------------------------------------------------------------


def visit_arguments(body: dict) -> dict:
    location = params.parse_object(body, "location")
    lon, lat, crs = params.parse_json_location(body)
    return {
        "client_id": params.parse_client_id(body),
        "household": params.parse_text(body, "household", max_length=40, default=""),
        "visited_at": params.parse_datetime_param(body, "visited_at", default=None),
        "lon": lon,
        "lat": lat,
        "crs": crs,
        "source": params.parse_choice(location, "location.source", SOURCES),
        "accuracy_m": params.parse_float(location, "location.accuracy_m", low=0, high=1e7, default=None),
        "notes": params.parse_text(body, "notes", max_length=MAX_NOTES, default=""),
        "follow_up": params.parse_text(body, "follow_up", max_length=MAX_NOTES, default=""),
        "follow_up_due": params.parse_date_param(body, "follow_up_due", default=None),
    }


class GridVisits(GridWorkerView):
    """My visits this month (GET) and a new visit (POST)."""

    parser_classes = [BodyLeftToTheView]

    @extend_schema(
        operation_id="grid_visits",
        summary="My visits (走访) this month in my grid",
        parameters=[OpenApiParameter("grid", OpenApiTypes.STR)],
        responses={200: _ANY, 403: ERROR},
    )
    def get(self, request: Request) -> Response:
        grid = worker_grid_get(reader=request.reader, code=_grid_code(request))
        start, end = month_bounds(timezone.localdate())
        return Response({"results": worker_visits(worker_id=request.user.pk, grid_id=grid["id"], since=start)})

    @extend_schema(
        operation_id="grid_visit_record",
        summary="Record a visit",
        description="`{client_id, household (a dwelling code of my grid, optional), visited_at, location: {lon, lat, "
        "crs, source: gps|tap, accuracy_m}, notes, follow_up, follow_up_due}` → 201; a resend with the same client_id "
        "→ 200 with `Idempotent-Replay: true`.",
        request=OpenApiTypes.OBJECT,
        responses={201: _ANY, 200: _ANY, 400: ERROR, 403: ERROR},
    )
    def post(self, request: Request) -> Response:
        grid = worker_grid_get(reader=request.reader, code=_grid_code(request))
        arguments = visit_arguments(params.parse_json_object(request.body))
        visit, created = visit_record(reader=request.reader, actor=request.user, grid=grid, **arguments)
        response = Response(visit_describe(visit), status=201 if created else 200)
        if not created:
            response["Idempotent-Replay"] = "true"
        return response


# --- the building sheet ---------------------------------------------------------------------------


class BuildingSheet(APIView):
    """楼盘表: floors × units of a building's dwellings, its units and open cases."""

    @extend_schema(
        operation_id="building_sheet",
        summary="The building sheet by building code",
        responses={200: _ANY, 404: ERROR},
    )
    def get(self, request: Request, code: str) -> Response:
        building_id = building_in_scope(scope=request.reader.scope, code=code)
        if building_id is None:
            raise NotFound(_("No building %(code)s.") % {"code": code[:40]}, parameter="code")
        return Response(building_sheet(reader=request.reader, building_id=building_id))


class BuildingSheetAt(APIView):
    """The sheet of the building at a point (a click on any page's map)."""

    @extend_schema(
        operation_id="building_sheet_at",
        summary="The building sheet of the building at a point",
        parameters=china_point_parameters(),
        responses={200: _ANY, 400: ERROR, 404: ERROR},
    )
    def get(self, request: Request) -> Response:
        lon, lat = params.parse_china_lon_lat(request.query_params)
        building_id = building_in_scope(scope=request.reader.scope, lon=lon, lat=lat)
        if building_id is None:
            raise NotFound(_("No building at this point."), parameter="lon")
        return Response(building_sheet(reader=request.reader, building_id=building_id))


# --- duty figures ---------------------------------------------------------------------------------

DUTY_READERS = roles_required(
    *sorted(VISIT_DUTIES["figures"].roles),
    message=gettext_lazy("The duty figures are for analysts and the command centre."),
)


class DutyFigures(APIView):
    permission_classes = [DUTY_READERS]

    @extend_schema(
        operation_id="statistics_duty",
        summary="Grid workers' duty figures per small grid for a month",
        parameters=[text_parameter("month", pattern=MONTH_PATTERN, description="YYYY-MM (default: this month)")],
        responses={200: _ANY, 400: ERROR, 403: ERROR},
    )
    def get(self, request: Request) -> Response:
        month = params.parse_month(request.query_params, "month", default=timezone.localdate().replace(day=1))
        return Response(duty_figures(scope=request.reader.scope, month=month))


# --- the stewards' page ---------------------------------------------------------------------------

STEWARDS = tuple(sorted(REGISTRY_DUTIES["decide"].roles))
MATCH_READERS = roles_required(*STEWARDS, message=gettext_lazy("The registry's match rate is for data stewards."))


#: How many months back the match rate goes at most.
MAX_MATCH_MONTHS = 36


def _match_window(months: int) -> tuple[dt.datetime, dt.datetime]:
    first = timezone.localdate().replace(day=1)
    for _step in range(months - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    start, _end = month_bounds(first)
    _start, end = month_bounds(timezone.localdate())
    return start, end


class MatchRate(APIView):
    permission_classes = [MATCH_READERS]

    @extend_schema(
        operation_id="registry_match_rate",
        summary="Address match rate of reports per month, and registry tasks answered",
        parameters=[integer_parameter("months", 1, MAX_MATCH_MONTHS, description="default 12")],
        responses={200: _ANY, 400: ERROR, 403: ERROR},
    )
    def get(self, request: Request) -> Response:
        months = params.parse_int(request.query_params, "months", low=1, high=MAX_MATCH_MONTHS, default=12)
        since, until = _match_window(months)
        return Response({"results": registry_match_rate(scope=request.reader.scope, since=since, until=until)})


@require_http_methods(["GET"])
@page_for(*STEWARDS)
def registry_page(request: HttpRequest) -> HttpResponse:
    reader = request.reader
    since, until = _match_window(12)
    context = {
        "awaiting": tasks_awaiting(scope=reader.scope, with_description=reader.reads_description),
        "rates": registry_match_rate(scope=reader.scope, since=since, until=until),
        "me": reader.user_id,
        "max_reason": MAX_REASON,
        "kinds": dict(RegistryTask.Kind.choices),
        "resolutions": dict(RegistryTask.Resolution.choices),
    }
    return render(request, "mapserver/registry/registry.html", context)


@require_POST
@page_for(*STEWARDS)
def registry_decide(request: HttpRequest, task_id: int) -> HttpResponse:
    try:
        decision = params.parse_choice(request.POST, "decision", DECISIONS)
        reason = params.parse_text(request.POST, "reason", max_length=MAX_REASON, default="")
        if not registry_task_in_scope(task_id=task_id, scope=request.reader.scope):
            raise NotFound(_("No registry task %(id)s.") % {"id": task_id}, parameter="task_id")
        registry_task_decide(task_id=task_id, reader=request.reader, actor=request.user, decision=decision,
                             reason=reason)  # fmt: skip
    except NotFound:
        # An error of the web layer too, so under the root: an unknown task stays a 404, not a
        # refusal said on the page.
        raise
    except (DomainError, BadParameter) as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Applied to the registry.") if decision == "approve" else _("Rejected."))
    return redirect(reverse("stewards:registry"))
