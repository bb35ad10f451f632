"""URL map of the HTTP edge."""

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from .views import home

urlpatterns = [
    path("", home.home, name="home"),
    path("admin/", admin.site.urls),
    # The schema is public: intake systems read it before they have a token.
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="api-schema"),
    path("api/whoami", home.WhoAmI.as_view(), name="api-whoami"),
]

# Unknown paths and unexpected failures render through the one error tree: JSON under the API
# prefixes, a page elsewhere, never a traceback.
handler404 = "mapserver.errors.page_not_found"
handler500 = "mapserver.errors.server_error"
