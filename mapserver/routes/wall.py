"""The command-center map wall with its dashboard API, and the analyst's workbench with its
statistics API."""

from django.urls import path

from ..views import analyst, wall

app_name = "wall"

urlpatterns = [
    path("wall/", wall.wall, name="page"),
    path("api/dashboard/kpis", wall.DashboardKpis.as_view(), name="api-dashboard-kpis"),
    path("api/dashboard/cases", wall.DashboardCases.as_view(), name="api-dashboard-cases"),
    path("api/dashboard/streets", wall.StreetRanking.as_view(), name="api-dashboard-streets"),
    # <str:code> so that a malformed code reaches the view and gets its 400 naming it.
    path("api/areas/<str:code>/summary", wall.AreaSummary.as_view(), name="api-area-summary"),
    path("analyst/", analyst.workbench, name="analyst"),
    path("api/statistics/areas", analyst.AreaStatistics.as_view(), name="api-statistics-areas"),
    path("api/statistics/series", analyst.EventSeries.as_view(), name="api-statistics-series"),
]
