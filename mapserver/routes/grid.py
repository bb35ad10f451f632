"""The grid worker's tablet: the page, its service worker and its API (the worker's grid, cases
and photos); the registry tasks and household visits done from it; the building sheet (楼盘表)
and the duty figures of the grid workers."""

from django.urls import path

from ..views import grid, registry_work

app_name = "grid"

urlpatterns = [
    path("grid/", grid.grid_page, name="page"),
    path("grid/sw.js", grid.service_worker, name="service-worker"),
    path("api/grid/session", grid.GridSession.as_view(), name="api-session"),
    path("api/grid/package", grid.GridPackage.as_view(), name="api-package"),
    path("api/grid/locate", grid.GridLocate.as_view(), name="api-locate"),
    path("api/grid/events", grid.GridEvents.as_view(), name="api-events"),
    path("api/grid/events/<int:event_id>", grid.GridEventDetail.as_view(), name="api-event"),
    path("api/grid/events/<int:event_id>/actions", grid.GridEventActions.as_view(), name="api-actions"),
    path("api/grid/events/<int:event_id>/photos", grid.GridEventPhotos.as_view(), name="api-photos"),
    path("api/grid/photos/<int:photo_id>", grid.GridPhoto.as_view(), name="api-photo"),
    path("api/grid/tasks", registry_work.GridTasks.as_view(), name="api-tasks"),
    path("api/grid/tasks/<int:task_id>/answer", registry_work.GridTaskAnswer.as_view(), name="api-task-answer"),
    path("api/grid/visits", registry_work.GridVisits.as_view(), name="api-visits"),
    path("api/buildings/sheet", registry_work.BuildingSheetAt.as_view(), name="api-building-sheet-at"),
    path("api/buildings/<str:code>/sheet", registry_work.BuildingSheet.as_view(), name="api-building-sheet"),
    path("api/statistics/duty", registry_work.DutyFigures.as_view(), name="api-statistics-duty"),
]
