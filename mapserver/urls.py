"""URL map of the HTTP edge."""

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from .views import events, geocode, home, locate
from .views import open311 as georeport

urlpatterns = [
    path("", home.home, name="home"),
    path("admin/", admin.site.urls),
    # The schema is public: intake systems read it before they have a token.
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="api-schema"),
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

# Unknown paths and unexpected failures render through the one error tree: JSON under the API
# prefixes, a page elsewhere, never a traceback.
handler404 = "mapserver.errors.page_not_found"
handler500 = "mapserver.errors.server_error"
