"""``GET /exports/<layer>.<format>``: a whole layer (or the part the filters keep) as a file.

The filters are the OGC items' (``bbox``, ``bbox-crs``, ``datetime``, the layer's filters,
equality on the reader's fields) and the fields are the reader's. ``crs`` picks the file's CRS
among the OGC API's (:data:`layers.geocoding.crs.OUTPUT_CRS`, CRS84 by default), with x = easting
(longitude) and y = northing (latitude) as files keep them; GeoPackage and Shapefile declare it,
GeoJSON names it in a ``crs`` member, CSV's point columns are ``lon, lat`` or, projected,
``x, y``. GeoJSON and CSV stream from a server-side cursor in constant memory (chunked, no
Content-Length; each Feature and each CSV line is made by PostgreSQL). GeoPackage and zipped
Shapefile cannot be streamed: asking for one queues an export job (202 with its state,
:mod:`mapserver.exportjobs`) that the export worker builds off the request path;
``GET /exports/jobs/<id>`` tells its progress and, once built, the link
``/exports/jobs/<id>/file``. A job is its requester's only.

``GET /exports/grid/<code>.html``: a self-contained folium map of one grid or street / community
for printing and offline sharing (:mod:`basemaps.printmap`).

Both hold only the reader's data scope (:mod:`layers.protection.scope`): an export is the layer as the
reader sees it, and a print map of an area with no grid in the scope is a 404.

Every export writes an audit entry (who, layer, format, filters, rows sent or written).
Personal fields (``Field.personal``: the events' reporter name and phone) are left out, unless the
reader holds ``layers.export_personal_data`` and names a ``purpose``: then they come decrypted,
at most ``MINQING_PERSONAL_EXPORT_MAX_ROWS`` rows, and the purpose goes into the audit entry.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

import geopandas as gpd
import pyogrio

from basemaps import printmap
from layers.geocoding.crs import CRS84, OutputCrs
from layers.protection.audit import actor_of, audit_record
from layers.protection.scope import Scope
from layers.publishing.catalog import Field, Layer, layer_get
from layers.selectors.exports import features_frame, selection_count
from layers.selectors.features import features_csv_stream, features_stream, selection_build

from .. import exportjobs, params
from ..errors import BadParameter, MinqingError, NotFound, PermissionDenied
from .ogc import FILTER_PARAMETERS, parse_feature_filters, readable_layer, reader_fields, reader_scope

FORMATS = ("geojson", "gpkg", "csv", "shp")
CONTENT_TYPES = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "csv": "text/csv; charset=utf-8",
    "shp": "application/zip",
}


def _attachment(response, filename: str):
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


#: First characters that make a spreadsheet read a cell as a formula (CSV injection): such text
#: cells get a leading apostrophe, which spreadsheets show as text and never evaluate.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_safe(field: Field) -> Field:
    """The field with its text cells defused against formula injection (citizens write the
    descriptions; analysts open the file in a spreadsheet)."""
    if field.type != "string":
        return field
    # In the replacement, '' is one apostrophe and \1 the character matched.
    return replace(field, sql=rf"regexp_replace(({field.sql})::text, '^([-=+@\t\r])', '''\1')")


def _spreadsheet_safe_text(value: object) -> object:
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _point_columns(crs: OutputCrs) -> tuple[str, str]:
    return ("x", "y") if crs.projected else ("lon", "lat")


def _frame_file(frame: gpd.GeoDataFrame, layer: Layer, fmt: str):
    """A GeoPackage or a zipped Shapefile of ``frame``, opened for sending."""
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        if fmt == "gpkg":
            path = folder / f"{layer.id}.gpkg"
            pyogrio.write_dataframe(frame, path, layer=layer.id, driver="GPKG")
        else:
            pyogrio.write_dataframe(frame, folder / f"{layer.id}.shp", driver="ESRI Shapefile", encoding="UTF-8")
            path = folder / f"{layer.id}.zip"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                for part in sorted(folder.glob(f"{layer.id}.*")):
                    if part.suffix != ".zip":
                        archive.write(part, part.name)
        # Opened before the directory goes: the open file outlives its name until it is sent.
        handle = open(path, "rb")  # noqa: SIM115  (FileResponse closes it)
    return handle


@extend_schema(exclude=True)
class Export(APIView):
    def get(self, request: Request, layer_id: str, fmt: str):
        layer = readable_layer(request, layer_id, what="layer")
        if fmt not in FORMATS:
            raise BadParameter(
                "format",
                _("must be one of %(value)s, got %(value2)s")
                % {"value": ", ".join(FORMATS), "value2": f"{fmt[:20]!r}"},
            )
        fields = reader_fields(request, layer)
        # Only a layer with personal fields takes a purpose (anywhere else it is an unknown parameter).
        accepted = (*FILTER_PARAMETERS, "crs", *(("purpose",) if layer.personal_fields else ()))
        chosen = parse_feature_filters(request.query_params, layer, fields, accepted=accepted)
        crs = params.parse_output_crs(request.query_params)
        purpose = params.parse_purpose(request.query_params, default=None)
        scope = reader_scope(request)
        if purpose is not None:
            return _personal_export(request, layer, fields, scope, chosen, fmt, purpose, crs)
        if fmt in exportjobs.FILE_FORMATS:
            # Built by the export worker, never here (mapserver/exportjobs.py): the job's state now.
            job, created = exportjobs.export_job_request(
                layer=layer, fmt=fmt, query=dict(request.query_params.items()), user=request.user
            )
            return export_job_response(request, job, status=202 if created else 200)
        response = StreamingHttpResponse(
            _audited_stream(request, layer, fields, scope, chosen, fmt, crs), content_type=CONTENT_TYPES[fmt]
        )
        return _attachment(response, f"{layer.id}.{fmt}")


def _audited_stream(
    request: Request, layer: Layer, fields: tuple[Field, ...], scope: Scope, chosen: dict, fmt: str, crs: OutputCrs
):
    """The streamed GeoJSON or CSV export as bytes, audited when it ends with the features
    actually sent (``complete`` false when the client hung up first): the count is known only
    then, and counting first would read the layer twice. The entry is written after the
    stream's own transaction is over, so a hang-up (which rolls that back) still leaves it."""
    sent = 0
    complete = False
    actor, client = actor_of(request.user), request.META.get("REMOTE_ADDR")
    filters = _filters(request)

    def counted(rows: int) -> None:
        nonlocal sent
        sent += rows

    if fmt == "csv":
        chunks = features_csv_stream(
            layer=layer,
            fields=tuple(_spreadsheet_safe(f) for f in fields),
            scope=scope,
            geometry_columns=_csv_geometry(layer, crs),
            on_rows=counted,
            crs=crs.in_gis_order(),
            **chosen,
        )
    else:
        chunks = features_stream(
            layer=layer, fields=fields, scope=scope, on_rows=counted, crs=crs.in_gis_order(), **chosen
        )
    try:
        if fmt == "csv":
            yield "\ufeff".encode()  # a BOM, so that spreadsheet programs read the Chinese as UTF-8
        for chunk in chunks:
            yield chunk.encode()
        complete = True
    finally:
        chunks.close()
        detail = {"format": fmt, "filters": filters, "rows": sent, "complete": complete, "client": client}
        audit_record(action="export", target=f"layer:{layer.id}", detail=detail, actor=actor)


def _csv_geometry(layer: Layer, crs: OutputCrs) -> tuple[tuple[str, str], ...]:
    """The CSV's geometry columns: points as lon/lat (projected: x/y) to about a centimetre,
    other geometries as WKT."""
    if layer.geometry_type != "Point":
        return (("wkt", "ST_AsText({g})"),)
    x, y = _point_columns(crs)
    return ((x, f"round(ST_X({{g}})::numeric, {crs.decimals})"), (y, f"round(ST_Y({{g}})::numeric, {crs.decimals})"))


def export_job_response(request: Request, job, *, status: int = 200) -> HttpResponse:
    """An export job's state as JSON: progress, and the download link once the file is built."""
    base = reverse("exports:job", args=[job.pk])
    built = exportjobs.job_file(job) is not None
    expiry = exportjobs.expires_at(job)
    body = {
        "id": job.pk,
        "layer": job.layer,
        "format": job.format,
        "status": job.status if job.status != "succeeded" or built else "expired",
        "rows_done": job.rows_done,
        "rows_total": job.rows_total,
        "progress": round(job.rows_done / job.rows_total, 4) if job.rows_total else None,
        "message": job.message,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "expires_at": expiry.isoformat() if expiry else None,
        "file_size": job.file_size if built else None,
        "status_url": request.build_absolute_uri(base),
        "download_url": request.build_absolute_uri(reverse("exports:job-file", args=[job.pk])) if built else None,
    }
    response = JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})
    response["Location"] = base
    response["Cache-Control"] = "no-store"
    return response


def _owned_job(request: Request, job_id: int):
    job = exportjobs.export_job_get(job_id=job_id, user=request.user)
    if job is None:
        raise NotFound(_("no export job %(value)s") % {"value": job_id})
    return job


@extend_schema(exclude=True)
class ExportJobState(APIView):
    """``GET /exports/jobs/<id>``: the requester's export job, its progress and download link."""

    def get(self, request: Request, job_id: int) -> HttpResponse:
        params.parse_layer_filters(request.query_params, ())
        return export_job_response(request, _owned_job(request, job_id))


@extend_schema(exclude=True)
class ExportJobFile(APIView):
    """``GET /exports/jobs/<id>/file``: the built file (409 while it is being built)."""

    def get(self, request: Request, job_id: int) -> FileResponse:
        params.parse_layer_filters(request.query_params, ())
        job = _owned_job(request, job_id)
        readable_layer(request, job.layer, what="layer")  # the access decision now, not at the build
        path = exportjobs.job_file(job)
        if path is None:
            if job.status in ("queued", "running"):
                raise JobNotReady(
                    _("the file is being built (%(done)s of %(total)s rows); ask again later")
                    % {"done": job.rows_done, "total": job.rows_total if job.rows_total is not None else "?"}
                )
            raise NotFound(
                _("export job %(value)s has no file (failed or expired); ask for the export again") % {"value": job_id}
            )
        layer = layer_get(job.layer)
        return _send(open(path, "rb"), layer, job.format)  # noqa: SIM115  (FileResponse closes it)


class JobNotReady(MinqingError):
    status = 409
    code = "not_ready"


def _send(handle, layer: Layer, fmt: str) -> FileResponse:
    """The file as an attachment with its length."""
    size = os.fstat(handle.fileno()).st_size
    response = FileResponse(handle, content_type=CONTENT_TYPES[fmt])
    response["Content-Length"] = str(size)
    return _attachment(response, f"{layer.id}.{'zip' if fmt == 'shp' else fmt}")


@extend_schema(exclude=True)
class PrintMap(APIView):
    """One grid (any level) or street / community region as a folium HTML page that loads nothing
    from the network."""

    def get(self, request: Request, code: str) -> HttpResponse:
        if request.query_params:
            raise BadParameter(sorted(request.query_params)[0], _("is not a parameter here; this export takes none"))
        # Through the named parser: a NUL or a quote never reaches the lookup.
        area = printmap.print_area_get(code=params.parse_text({"code": code}, "code", max_length=40))
        scope = reader_scope(request)
        # An area outside the scope answers as one that does not exist.
        if area is None or not printmap.print_area_readable(area=area, scope=scope):
            raise NotFound(f"no grid, street or community with code {code[:30]!r}")
        page = printmap.print_map_html(area=area, reader=request.reader)
        audit_record(action="export", target=f"area:{area.code}", detail={"format": "html", "kind": "print_map"})
        response = HttpResponse(page, content_type="text/html; charset=utf-8")
        return _attachment(response, f"{area.code}.html")


# --- the audit and personal fields ----------------------------------------------------------------


class TooManyRows(MinqingError):
    code = "too_many_rows"


def _filters(request: Request) -> dict[str, str]:
    return {name: value[:200] for name, value in request.query_params.items() if name != "purpose"}


def _audit_export(request: Request, layer: Layer, fmt: str, *, rows: int | None, **more) -> None:
    """One audit entry per export: who (the request's user), layer, format, filters, rows."""
    detail = {"format": fmt, "filters": _filters(request), "rows": rows, **more}
    audit_record(action="export.personal" if more else "export", target=f"layer:{layer.id}", detail=detail)


def _personal_export(
    request: Request,
    layer: Layer,
    fields: tuple[Field, ...],
    scope: Scope,
    chosen: dict,
    fmt: str,
    purpose: str,
    crs: OutputCrs = CRS84,
):
    """An export with the layer's personal fields in clear: only for a holder of
    ``layers.export_personal_data`` who names a purpose, only up to
    ``MINQING_PERSONAL_EXPORT_MAX_ROWS`` rows, and audited with the purpose (a refusal too)."""
    personal_fields = layer.personal_fields
    if not request.reader.may_export_personal:
        audit_record(
            action="export.personal_denied",
            target=f"layer:{layer.id}",
            detail={"format": fmt, "filters": _filters(request), "purpose": purpose},
        )
        raise PermissionDenied(
            _("Exporting personal fields needs the permission layers.export_personal_data."),
            parameter="purpose",
        )
    limit = settings.MINQING_PERSONAL_EXPORT_MAX_ROWS
    count = selection_count(selection=selection_build(layer=layer, scope=scope, **chosen))
    if count > limit:
        raise TooManyRows(
            _(
                "an export with personal fields holds at most %(limit)s rows, this one %(count)s; narrow it with "
                "bbox, datetime or the layer's filters"
            )
            % {"limit": f"{limit:,}", "count": f"{count:,}"}
        )
    # The row cap above bounds the decryption, one value at a time.
    frame = features_frame(layer=layer, fields=(*fields, *personal_fields), scope=scope, chosen=chosen, crs=crs)
    _audit_export(request, layer, fmt, rows=len(frame), personal=[f.name for f in personal_fields], purpose=purpose)
    if fmt in ("gpkg", "shp"):
        return _send(_frame_file(frame, layer, fmt), layer, fmt)
    target = tempfile.TemporaryFile()
    if fmt == "csv":
        if layer.geometry_type == "Point":
            x, y = _point_columns(crs)
            table = frame.drop(columns="geometry").assign(
                **{x: frame.geometry.x.round(crs.decimals), y: frame.geometry.y.round(crs.decimals)}
            )
        else:
            table = frame.drop(columns="geometry").assign(wkt=frame.geometry.to_wkt())
        table = table.apply(lambda column: column.map(_spreadsheet_safe_text) if column.dtype == object else column)
        target.write(table.to_csv(index=False).encode("utf-8-sig"))
    else:
        target.write(frame.to_json(ensure_ascii=False, drop_id=True).encode())
    target.seek(0)
    return _send(target, layer, fmt)
