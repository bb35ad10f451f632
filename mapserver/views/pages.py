"""What every page (wall, grid worker, analyst) shares: who may open it.

Pages are HTML for people: an anonymous visitor is sent to the login page (and back after it);
a logged-in user without the page's role gets the 403 page of the error tree. Administrators
(the group, or a superuser) may open every page.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from layers.services.users import Role

from ..errors import PermissionDenied


def page_for(*roles: Role) -> Callable:
    """Decorator of a page view: login required, then one of ``roles`` (or administrator)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.reader.has_any_role(*roles):
                raise PermissionDenied(_("Your account may not open this page."))
            return view(request, *args, **kwargs)

        return guarded

    return decorate
