"""The front door and what every page needs: login and logout, the language switch, the
JavaScript translations and the favicon."""

from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.gzip import gzip_page
from django.views.generic import RedirectView
from django.views.i18n import JavaScriptCatalog

from ..views import home

app_name = "pages"

urlpatterns = [
    path("", home.home, name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="mapserver/pages/login.html", redirect_authenticated_user=False),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # set_language (pages:set_language): POST language=zh-hans|en, next=<path>; stores the
    # choice in a cookie.
    path("i18n/", include("django.conf.urls.i18n")),
    # The translations every page loads first (gzip: no secret in it, nothing of the request).
    path("jsi18n/", gzip_page(JavaScriptCatalog.as_view()), name="javascript-catalog"),
    # Browsers ask for /favicon.ico on pages that name no icon (admin, error pages).
    path("favicon.ico", RedirectView.as_view(url=static("mapserver/common/favicon.svg"), permanent=True)),
]
