"""URL map of the HTTP edge."""

from django.contrib import admin
from django.urls import path

from . import metrics
from .schema import SchemaView
from .views import events, geocode, home, locate, tiles
from .views import open311 as georeport

urlpatterns = [
    path("", home.home, name="home"),
    path("admin/", admin.site.urls),
    # Operations: liveness, readiness, Prometheus metrics (mapserver/metrics.py).
    path("healthz", metrics.healthz, name="healthz"),
    path("readyz", metrics.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    # The schema is public: intake systems read it before they have a token.
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/whoami", home.WhoAmI.as_view(), name="api-whoami"),
    path("api/locate", locate.Locate.as_view(), name="api-locate"),
    path("api/geocode", geocode.Geocode.as_view(), name="api-geocode"),
    path("api/events", events.EventList.as_view(), name="api-events"),
    path("api/events/<int:event_id>", events.EventDetail.as_view(), name="api-event"),
    path("api/events/<int:event_id>/actions", events.EventActions.as_view(), name="api-event-actions"),
]

# Open311 GeoReport v2; the extension (.json or .xml) picks the format. Service codes hold dots
# (hazard.fire.json): the greedy code pattern leaves only the last extension to the format.
urlpatterns += [
    path("open311/v2/services.<str:fmt>", georeport.Services.as_view(), name="open311-services"),
    path("open311/v2/services/<str:code>.<str:fmt>", georeport.ServiceDefinition.as_view(), name="open311-service"),
    path("open311/v2/requests.<str:fmt>", georeport.Requests.as_view(), name="open311-requests"),
    path("open311/v2/requests/<str:pk>.<str:fmt>", georeport.RequestDetail.as_view(), name="open311-request"),
]

# The layer catalog and the basemaps (issue 4).
from .views import basemaps as basemap_views  # noqa: E402
from .views import catalog  # noqa: E402

urlpatterns += [
    path("api/layers", catalog.LayerCatalog.as_view(), name="api-layers"),
    path("basemaps/", basemap_views.basemap_list, name="basemaps"),
    # <path:name> so that a name with "../" in it reaches the view and gets its 400.
    path("basemaps/<path:name>/<str:z>/<str:x>/<str:y>.<str:ext>", basemap_views.basemap_tile, name="basemap-tile"),
]

# Vector tiles of the catalog layers. z/x/y are matched as text so that a bad one gets a 400
# naming it (an int converter would answer a bare 404).
urlpatterns += [
    path("tiles/", tiles.TileIndex.as_view(), name="tiles-index"),
    path("tiles/<str:layer>.json", tiles.TileJSON.as_view(), name="tiles-tilejson"),
    path("tiles/<str:layer>/<str:z>/<str:x>/<str:y>.pbf", tiles.tile, name="tiles-tile"),
]

# OGC API – Features (mapserver/views/ogc.py) and layer exports, named by catalog layer id.
from .views import exports, ogc  # noqa: E402

urlpatterns += [
    path("ogc/", ogc.Landing.as_view(), name="ogc-landing"),
    # The root without its slash too: QGIS's OAPIF provider does not follow the redirect.
    path("ogc", ogc.Landing.as_view()),
    path("ogc/api", ogc.ApiDefinition.as_view(), name="ogc-api"),
    path("ogc/api.html", ogc.ApiDocumentation.as_view(), name="ogc-api-html"),
    path("ogc/conformance", ogc.Conformance.as_view(), name="ogc-conformance"),
    path("ogc/collections", ogc.Collections.as_view(), name="ogc-collections"),
    path("ogc/collections/<str:collection>", ogc.Collection.as_view(), name="ogc-collection"),
    path("ogc/collections/<str:collection>/items", ogc.Items.as_view(), name="ogc-items"),
    path("ogc/collections/<str:collection>/items/<str:feature_id>", ogc.Item.as_view(), name="ogc-item"),
    # Before the layer exports, so that "grid" is never read as a layer id.
    path("exports/grid/<str:code>.html", exports.PrintMap.as_view(), name="export-print-map"),
    path("exports/jobs/<int:job_id>", exports.ExportJobState.as_view(), name="export-job"),
    path("exports/jobs/<int:job_id>/file", exports.ExportJobFile.as_view(), name="export-job-file"),
    path("exports/<str:layer_id>.<str:fmt>", exports.Export.as_view(), name="export"),
]

# Unknown paths and unexpected failures render through the one error tree: JSON under the API
# prefixes, a page elsewhere, never a traceback.
handler404 = "mapserver.errors.page_not_found"
handler500 = "mapserver.errors.server_error"

# Heat maps and hot spots, put first: /exports/heat.tif must win over /exports/<layer>.<format>
# (the .png suffix already keeps /tiles/heat/… apart from the vector tiles).
from .views import heat as heat_views  # noqa: E402

urlpatterns[:0] = [
    path("tiles/heat/<str:z>/<str:x>/<str:y>.png", heat_views.HeatTile.as_view(), name="heat-tile"),
    path("exports/heat.tif", heat_views.HeatGeoTiff.as_view(), name="heat-geotiff"),
    path("api/hotspots", heat_views.Hotspots.as_view(), name="api-hotspots"),
    path("api/early-warnings", heat_views.EarlyWarnings.as_view(), name="api-early-warnings"),
]

# Pages (issue 5): login, language switch, JS translations, and the pages themselves.
from django.contrib.auth import views as auth_views  # noqa: E402
from django.templatetags.static import static  # noqa: E402
from django.urls import include  # noqa: E402
from django.views.decorators.gzip import gzip_page  # noqa: E402
from django.views.generic import RedirectView  # noqa: E402
from django.views.i18n import JavaScriptCatalog  # noqa: E402

urlpatterns += [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="mapserver/pages/login.html", redirect_authenticated_user=False),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # set_language: POST language=zh-hans|en, next=<path>; stores the choice in a cookie.
    path("i18n/", include("django.conf.urls.i18n")),
    # The translations every page loads first (gzip: no secret in it, nothing of the request).
    path("jsi18n/", gzip_page(JavaScriptCatalog.as_view()), name="javascript-catalog"),
    # Browsers ask for /favicon.ico on pages that name no icon (admin, error pages).
    path("favicon.ico", RedirectView.as_view(url=static("mapserver/common/favicon.svg"), permanent=True)),
]

# The command-center map wall (issue 5).
from .views import wall as wall_views  # noqa: E402

urlpatterns += [
    path("wall/", wall_views.wall, name="wall"),
    path("api/dashboard/kpis", wall_views.DashboardKpis.as_view(), name="api-dashboard-kpis"),
    path("api/dashboard/cases", wall_views.DashboardCases.as_view(), name="api-dashboard-cases"),
    path("api/dashboard/streets", wall_views.StreetRanking.as_view(), name="api-dashboard-streets"),
    # <str:code> so that a malformed code reaches the view and gets its 400 naming it.
    path("api/areas/<str:code>/summary", wall_views.AreaSummary.as_view(), name="api-area-summary"),
]

# The analyst workbench (issue 5): the page and its statistics API.
from .views import analyst as analyst_views  # noqa: E402

urlpatterns += [
    path("api/statistics/areas", analyst_views.AreaStatistics.as_view(), name="api-statistics-areas"),
    path("api/statistics/series", analyst_views.EventSeries.as_view(), name="api-statistics-series"),
    path("analyst/", analyst_views.workbench, name="analyst"),
]

# The grid worker's tablet (issue 5): the page, its service worker and its API.
from .views import grid as grid_views  # noqa: E402

urlpatterns += [
    path("grid/", grid_views.grid_page, name="grid"),
    path("grid/sw.js", grid_views.service_worker, name="grid-service-worker"),
    path("api/grid/session", grid_views.GridSession.as_view(), name="api-grid-session"),
    path("api/grid/package", grid_views.GridPackage.as_view(), name="api-grid-package"),
    path("api/grid/locate", grid_views.GridLocate.as_view(), name="api-grid-locate"),
    path("api/grid/events", grid_views.GridEvents.as_view(), name="api-grid-events"),
    path("api/grid/events/<int:event_id>", grid_views.GridEventDetail.as_view(), name="api-grid-event"),
    path("api/grid/events/<int:event_id>/actions", grid_views.GridEventActions.as_view(), name="api-grid-actions"),
    path("api/grid/events/<int:event_id>/photos", grid_views.GridEventPhotos.as_view(), name="api-grid-photos"),
    path("api/grid/photos/<int:photo_id>", grid_views.GridPhoto.as_view(), name="api-grid-photo"),
]

# Personal data revealed one value at a time, with a purpose; audited (issue 6).
from .views import personal as personal_views  # noqa: E402

urlpatterns += [
    path("api/persons/<int:person_id>/reveal", personal_views.PersonReveal.as_view(), name="api-person-reveal"),
    path("api/events/<int:event_id>/reveal", personal_views.EventReveal.as_view(), name="api-event-reveal"),
]

# The data steward's import page: uploads, background dry runs and commits.
from .views import imports as import_views  # noqa: E402

urlpatterns += [
    path("imports/", import_views.import_page, name="imports"),
    path("api/imports", import_views.ImportList.as_view(), name="api-imports"),
    path("api/imports/<int:job_id>", import_views.ImportDetail.as_view(), name="api-import"),
    path("api/imports/<int:job_id>/commit", import_views.ImportCommit.as_view(), name="api-import-commit"),
    path("api/imports/<int:job_id>/report.csv", import_views.ImportReportFile.as_view(), name="api-import-report"),
    path("api/imports/<int:job_id>/preview.geojson", import_views.ImportPreview.as_view(), name="api-import-preview"),
]

# The residents' side (小兰帮办): report, follow and rate a case; the public map and its feeds;
# the moderation queue of the public summaries.
from .views import moderation as moderation_views  # noqa: E402
from .views import public as public_views  # noqa: E402
from .views import residents as resident_views  # noqa: E402

urlpatterns += [
    path("report/", resident_views.report_page, name="report"),
    path("report/follow/", resident_views.follow_page, name="report-follow"),
    path("api/resident/categories", resident_views.ResidentCategories.as_view(), name="api-resident-categories"),
    path("api/resident/place", resident_views.ResidentPlace.as_view(), name="api-resident-place"),
    path("api/resident/geocode", resident_views.ResidentGeocode.as_view(), name="api-resident-geocode"),
    path("api/resident/reports", resident_views.ResidentReports.as_view(), name="api-resident-reports"),
    path("api/resident/case", resident_views.ResidentCase.as_view(), name="api-resident-case"),
    path("api/resident/answer", resident_views.ResidentAnswer.as_view(), name="api-resident-answer"),
    path("api/resident/photos", resident_views.ResidentPhotos.as_view(), name="api-resident-photos"),
    path("api/resident/photos/<int:photo_id>", resident_views.ResidentPhoto.as_view(), name="api-resident-photo"),
    path("public/", public_views.public_page, name="public"),
    path("public/embed/", public_views.embed_page, name="public-embed"),
    path("public/feed.json", public_views.feed_json, name="public-feed-json"),
    path("public/feed.rss", public_views.feed_rss, name="public-feed-rss"),
    path("api/public/month", public_views.PublicMonth.as_view(), name="api-public-month"),
    path("api/public/cells", public_views.PublicCells.as_view(), name="api-public-cells"),
    path("api/public/cases", public_views.PublicCases.as_view(), name="api-public-cases"),
    path("moderation/", moderation_views.moderation_page, name="moderation"),
    path("moderation/events/<int:event_id>/summary", moderation_views.summary_propose, name="moderation-propose"),
    path("moderation/summaries/<int:summary_id>/decide", moderation_views.summary_decide, name="moderation-decide"),
]

# 研判: the monthly situation report and the keyword library proven before it goes live.
from django.urls import re_path  # noqa: E402

from .views import judgement as judgement_views  # noqa: E402
from .views import rules as rule_views  # noqa: E402

urlpatterns += [
    path("judgement/", judgement_views.judgement_page, name="judgement"),
    path("api/judgement/report", judgement_views.JudgementReport.as_view(), name="api-judgement-report"),
    path("rules/", rule_views.rules_page, name="rules"),
    path("rules/drafts/save", rule_views.rules_draft_save, name="rules-draft-save"),
    path("rules/<int:library_id>/", rule_views.rules_version_page, name="rules-version"),
    # replay, approve or discard (the pattern admits no other action: the rest are 404s)
    re_path(
        r"^rules/(?P<library_id>[0-9]+)/(?P<action>replay|approve|discard)$",
        rule_views.rules_draft_act,
        name="rules-draft-act",
    ),  # fmt: skip
    path("api/rules", rule_views.RuleLibrary.as_view(), name="api-rules"),
    path("api/rules/<int:library_id>", rule_views.RuleVersion.as_view(), name="api-rules-version"),
    path("api/rules/<int:library_id>/replay", rule_views.RuleReplay.as_view(), name="api-rules-replay"),
    path(
        "api/rules/<int:library_id>/approve",
        rule_views.RuleApprove.as_view(),
        name="api-rules-approve",
    ),
    path(
        "api/rules/<int:library_id>/discard",
        rule_views.RuleDiscard.as_view(),
        name="api-rules-discard",
    ),
]

# The registry's upkeep (registry tasks, the stewards' page), the building sheet (楼盘表) and the
# grid workers' visits and duty figures.
from .views import registry_work as registry_views  # noqa: E402

urlpatterns += [
    path("api/grid/tasks", registry_views.GridTasks.as_view(), name="api-grid-tasks"),
    path("api/grid/tasks/<int:task_id>/answer", registry_views.GridTaskAnswer.as_view(), name="api-grid-task-answer"),
    path("api/grid/visits", registry_views.GridVisits.as_view(), name="api-grid-visits"),
    path("api/buildings/sheet", registry_views.BuildingSheetAt.as_view(), name="api-building-sheet-at"),
    path("api/buildings/<str:code>/sheet", registry_views.BuildingSheet.as_view(), name="api-building-sheet"),
    path("api/statistics/duty", registry_views.DutyFigures.as_view(), name="api-statistics-duty"),
    path("api/registry/match-rate", registry_views.MatchRate.as_view(), name="api-registry-match-rate"),
    path("registry/", registry_views.registry_page, name="registry"),
    path("registry/tasks/<int:task_id>/decide", registry_views.registry_decide, name="registry-decide"),
]
