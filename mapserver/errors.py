"""One error tree and its renderer.

Every error a client can cause is a :class:`~layers.errors.DomainError` carrying its HTTP status
and a machine code: the services' own errors, and the web layer's under :class:`MinqingError`.
:class:`ErrorMiddleware` renders them as JSON for ``/api/`` and friends and as a page elsewhere;
DRF's handler is routed through the same renderer. A client never sees a traceback: unexpected
exceptions become a logged 500 with a reference, not the stack.
"""

from __future__ import annotations

import logging
import math
import sys
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import SimpleTemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions as drf_exceptions
from rest_framework.views import exception_handler as drf_default_handler

from layers.errors import DomainError

logger = logging.getLogger("minqing.errors")

#: Path prefixes answered in JSON (machines); everything else gets an HTML page (people).
JSON_PREFIXES = ("/api/", "/open311/", "/ogc/", "/tiles/", "/exports/", "/basemaps/")


class MinqingError(DomainError):
    """Base of the web layer's errors (a request's parameters, authentication, paths, limits): the
    root's shape, raised by views and middleware rather than by the services."""


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
    """The database or another dependency is down; the client may retry (after ``Retry-After``
    seconds, ``MINQING_RETRY_AFTER_SECONDS``; a write with the same ``Idempotency-Key``)."""

    status = 503
    code = "unavailable"


#: What the client reads when the database cannot be reached (in their language, when the answer
#: is made); the driver's text goes to the log.
DATABASE_UNAVAILABLE = gettext_lazy("The database is unavailable for the moment; retry shortly.")


def database_unavailable(exception: BaseException | None) -> ServiceUnavailable | None:
    """The 503 for a lost database: a failed connect, a connection dropped mid-request (a restart)
    or one already closed. Django reconnects on the next request (``CONN_HEALTH_CHECKS``), so
    the client may retry; ``None`` for any other exception."""
    from django.db import InterfaceError, OperationalError

    if isinstance(exception, OperationalError | InterfaceError):
        return ServiceUnavailable(str(DATABASE_UNAVAILABLE), detail=f"{type(exception).__name__}: {exception}".strip())
    return None


class PayloadTooLarge(MinqingError):
    """A request body over the size limits (``MINQING_REQUEST_MAX_BYTES``, ``DATA_UPLOAD_MAX_MEMORY_SIZE``)."""

    status = 413
    code = "payload_too_large"


class TooManyRequests(MinqingError):
    """429 (rate limits, login lockout); ``retry_after`` seconds become the ``Retry-After`` header."""

    status = 429
    code = "throttled"

    def __init__(self, message: str, *, retry_after: int, **context: object) -> None:
        super().__init__(message, retry_after=retry_after, **context)
        self.retry_after = retry_after


def throttled(wait: float | None) -> TooManyRequests:
    """A rate-limited request; ``wait`` is DRF's estimate in seconds (at least 1 is told)."""
    seconds = max(1, math.ceil(wait or 1))
    return TooManyRequests(_("Too many requests: retry in %(seconds)s s.") % {"seconds": seconds}, retry_after=seconds)


def server_error_message(reference: str) -> str:
    """What a client reads for an unexpected failure: a reference to quote to the administrator."""
    return _("Internal error: tell the administrator the reference %(reference)s.") % {"reference": reference}


class ServerError(MinqingError):
    """An unexpected failure: the client gets a reference to quote, the log gets the traceback."""

    status = 500
    code = "server_error"


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES) or "application/json" in request.headers.get("Accept", "")


def render_error(request: HttpRequest, error: DomainError) -> HttpResponse:
    if error.detail:
        logger.warning("%s %s: %s (%s)", request.method, request.path, error.message, error.detail)
    if wants_json(request):
        response = JsonResponse(error.as_dict(), status=error.status, json_dumps_params={"ensure_ascii": False})
    else:
        response = SimpleTemplateResponse("mapserver/error.html", {"error": error}, status=error.status).render()
    if error.status == 503:
        response["Retry-After"] = str(settings.MINQING_RETRY_AFTER_SECONDS)
    if getattr(error, "retry_after", None):
        response["Retry-After"] = str(error.retry_after)
    return response


class ErrorMiddleware:
    """Renders a :class:`~layers.errors.DomainError` raised by any view, and hides unexpected ones."""

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
        # Every error of the tree carries its own status and code (a service's 409 for a refused
        # transition, 400 naming the field; ours), so layers stays free of HTTP.
        if isinstance(exception, DomainError):
            return render_error(request, exception)
        unavailable = database_unavailable(exception)
        if unavailable is not None:
            return render_error(request, unavailable)
        too_big = _body_refused(exception)
        if too_big is not None:
            return render_error(request, too_big)
        return None


def _body_refused(exception: Exception) -> MinqingError | None:
    """Django's refusals of a request body (raised when a view reads it) as errors of the tree."""
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent

    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return PayloadTooLarge(
            _("The request body is over the limit of %(limit)s bytes.") % {"limit": f"{limit:,}"}, limit=limit
        )
    if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        return BadParameter("body", str(exception))
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
    if isinstance(exc, DomainError):
        return render_error(request, exc)
    for drf_class, ours in _DRF_TO_TREE.items():
        if isinstance(exc, drf_class):
            response = render_error(request, ours(str(exc.detail)))
            if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
                response["WWW-Authenticate"] = 'Token realm="api"'
            return response
    if isinstance(exc, drf_exceptions.Throttled):
        return render_error(request, throttled(exc.wait))
    if isinstance(exc, drf_exceptions.APIException):
        # DRF's other refusals (405 method, 406 Accept, 415 media type, 400 unparsable body) keep
        # their status and code but take the tree's shape, not DRF's {"detail": …}. (DRF adds
        # the Allow header to every answer of its views itself.)
        return render_error(request, _from_drf(exc))
    return drf_default_handler(exc, context)


def _from_drf(exc: drf_exceptions.APIException) -> MinqingError:
    """One of DRF's exceptions as an error of the tree, with its status and machine code."""
    error = MinqingError(str(exc.detail) if not isinstance(exc.detail, list | dict) else exc.default_detail)
    error.status, error.code = exc.status_code, exc.default_code
    return error


def reference() -> str:
    return uuid.uuid4().hex[:12]


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: an unknown path, in JSON under the API prefixes and as a page elsewhere."""
    return render_error(request, NotFound(_("No such path: %(path)s") % {"path": request.path}))


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: an unexpected exception. The traceback goes to the log under a reference;
    the client sees only that reference (Django calls this inside the ``except`` block, so the
    exception being handled is still at hand for the log)."""
    # A lost database outside a view (a session read or save in a middleware) is still a 503
    # the client may retry, not a 500.
    unavailable = database_unavailable(sys.exc_info()[1])
    if unavailable is not None:
        return render_error(request, unavailable)
    ref = reference()
    logger.error("unexpected error on %s %s, reference %s", request.method, request.path, ref, exc_info=True)
    return render_error(request, ServerError(server_error_message(ref), reference=ref))
