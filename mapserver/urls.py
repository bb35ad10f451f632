"""URL map of the HTTP edge."""

from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/whoami", views.WhoAmI.as_view(), name="api-whoami"),
]

# Unknown paths and unexpected failures render through the one error tree: JSON under the API
# prefixes, a page elsewhere, never a traceback.
handler404 = "mapserver.errors.page_not_found"
handler500 = "mapserver.errors.server_error"
