"""One error tree and its renderer.

Every error a client can cause is a :class:`MinqingError` subclass carrying its HTTP status and
a machine code. :class:`ErrorMiddleware` renders them as JSON for ``/api/`` and friends and as a
page elsewhere; DRF's handler is routed through the same renderer. A client never sees a
traceback: unexpected exceptions become a logged 500 with a reference, not the stack.
"""

from __future__ import annotations

import logging
import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import SimpleTemplateResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.views import exception_handler as drf_default_handler

from layers.errors import DomainError

logger = logging.getLogger("minqing.errors")

#: Path prefixes answered in JSON (machines); everything else gets an HTML page (people).
JSON_PREFIXES = ("/api/", "/open311/", "/ogc/", "/tiles/", "/exports/", "/basemaps/")


class MinqingError(Exception):
    """Base of the tree. ``message`` is shown to the user; ``detail`` is only logged."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, detail: str = "", **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.context = context

    def as_dict(self) -> dict:
        body: dict = {"error": {"code": self.code, "message": self.message}}
        if self.context:
            body["error"].update(self.context)
        return body


class BadParameter(MinqingError):
    """A request parameter is missing or malformed; names the parameter and the expected form."""

    code = "bad_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}", parameter=parameter)


class NotAuthenticated(MinqingError):
    status = 401
    code = "not_authenticated"


class PermissionDenied(MinqingError):
    status = 403
    code = "permission_denied"


class NotFound(MinqingError):
    status = 404
    code = "not_found"


class Conflict(MinqingError):
    status = 409
    code = "conflict"


class ServiceUnavailable(MinqingError):
    """The database or another dependency is down; the client may retry."""

    status = 503
    code = "unavailable"


class ServerError(MinqingError):
    """An unexpected failure: the client gets a reference to quote, the log gets the traceback."""

    status = 500
    code = "server_error"


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES) or "application/json" in request.headers.get("Accept", "")


def render_error(request: HttpRequest, error: MinqingError | DomainError) -> HttpResponse:
    if error.detail:
        logger.warning("%s %s: %s (%s)", request.method, request.path, error.message, error.detail)
    if wants_json(request):
        return JsonResponse(error.as_dict(), status=error.status, json_dumps_params={"ensure_ascii": False})
    response = SimpleTemplateResponse("mapserver/error.html", {"error": error}, status=error.status)
    return response.render()


class ErrorMiddleware:
    """Renders :class:`MinqingError` raised by any view, and hides unexpected ones."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # An unmatched URL never reaches a view; with DEBUG on Django answers it with its HTML
        # debug page, which an API client cannot read. Machines get the JSON error instead.
        if response.status_code == 404 and wants_json(request) and "text/html" in response.get("Content-Type", ""):
            return page_not_found(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # A service's DomainError carries its own status and code (409 for a refused transition,
        # 400 naming the field), so it renders like ours; layers stays free of HTTP.
        if isinstance(exception, MinqingError | DomainError):
            return render_error(request, exception)
        from django.db import OperationalError

        if isinstance(exception, OperationalError):
            logger.exception("database unavailable on %s", request.path)
            return render_error(request, ServiceUnavailable("数据库暂不可用，请稍后重试 (database unavailable, retry)"))
        return None


_DRF_TO_TREE = {
    drf_exceptions.NotAuthenticated: NotAuthenticated,
    drf_exceptions.AuthenticationFailed: NotAuthenticated,
    drf_exceptions.PermissionDenied: PermissionDenied,
    drf_exceptions.NotFound: NotFound,
}


def api_exception_handler(exc: Exception, context: dict) -> HttpResponse | None:
    """DRF's hook: our errors and DRF's own go through the one renderer."""
    request = context["request"]
    if isinstance(exc, MinqingError | DomainError):
        return render_error(request, exc)
    for drf_class, ours in _DRF_TO_TREE.items():
        if isinstance(exc, drf_class):
            response = render_error(request, ours(str(exc.detail)))
            if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
                response["WWW-Authenticate"] = 'Token realm="api"'
            return response
    return drf_default_handler(exc, context)


def reference() -> str:
    return uuid.uuid4().hex[:12]


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: an unknown path, in JSON under the API prefixes and as a page elsewhere."""
    return render_error(request, NotFound(f"没有这个地址 (no such path): {request.path}"))


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: an unexpected exception. The traceback goes to the log under a reference;
    the client sees only that reference (Django calls this inside the ``except`` block, so the
    exception being handled is still at hand for the log)."""
    ref = reference()
    logger.error("unexpected error on %s %s, reference %s", request.method, request.path, ref, exc_info=True)
    return render_error(
        request, ServerError(f"服务器内部错误，请联系管理员并提供编号 (internal error, reference) {ref}", reference=ref)
    )
