"""Exports: a grid's print map, background export jobs, the heat GeoTIFF and the catalog
layers' files.

The order matters here: ``exports/<str:layer_id>.<str:fmt>`` matches any file name with a dot in
it, so ``exports/heat.tif`` comes first (it would be taken for a layer called "heat"). The paths
under ``exports/grid/`` and ``exports/jobs/`` hold a second slash, which ``<str:…>`` never spans;
they come first all the same, so that no layer id could shadow them."""

from django.urls import path

from ..views import exports, heat

app_name = "exports"

urlpatterns = [
    path("exports/heat.tif", heat.HeatGeoTiff.as_view(), name="heat-geotiff"),
    path("exports/grid/<str:code>.html", exports.PrintMap.as_view(), name="print-map"),
    path("exports/jobs/<int:job_id>", exports.ExportJobState.as_view(), name="job"),
    path("exports/jobs/<int:job_id>/file", exports.ExportJobFile.as_view(), name="job-file"),
    path("exports/<str:layer_id>.<str:fmt>", exports.Export.as_view(), name="layer"),
]
