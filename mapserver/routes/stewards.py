"""The data stewards' work: the import page and its API (uploads, background dry runs, commits),
and the registry's upkeep (the changes grid workers propose, the address match rate)."""

from django.urls import path

from ..views import imports, registry_work

app_name = "stewards"

urlpatterns = [
    path("imports/", imports.import_page, name="imports"),
    path("api/imports", imports.ImportList.as_view(), name="api-imports"),
    path("api/imports/<int:job_id>", imports.ImportDetail.as_view(), name="api-import"),
    path("api/imports/<int:job_id>/commit", imports.ImportCommit.as_view(), name="api-import-commit"),
    path("api/imports/<int:job_id>/report.csv", imports.ImportReportFile.as_view(), name="api-import-report"),
    path("api/imports/<int:job_id>/preview.geojson", imports.ImportPreview.as_view(), name="api-import-preview"),
    path("registry/", registry_work.registry_page, name="registry"),
    path("registry/tasks/<int:task_id>/decide", registry_work.registry_decide, name="registry-decide"),
    path("api/registry/match-rate", registry_work.MatchRate.as_view(), name="api-registry-match-rate"),
]
