"""URL map of the HTTP edge."""

from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/whoami", views.WhoAmI.as_view(), name="api-whoami"),
]
