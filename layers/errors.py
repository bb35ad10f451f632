"""The root of every error a client can cause, and the domain errors raised by :mod:`layers`.

:class:`DomainError` knows nothing of HTTP: its ``status`` and ``code`` are data the web layer
answers with (409 for a refused transition, 400 for bad input). The web layer's own errors
(``mapserver.errors.MinqingError`` and its tree) derive from it, so one renderer, DRF's handler
and the tile server each catch this one class.
"""

from __future__ import annotations

from django.utils.translation import gettext as _


class DomainError(Exception):
    """Root of the error tree. ``message`` is shown to the user (in their language); ``detail``
    is only logged; ``context`` adds fields to the body beside ``code`` and ``message``."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, detail: str = "", **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.context = context

    def as_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, **self.context}}


class InvalidInput(DomainError):
    """A value given to a service is unusable; names the field."""

    code = "bad_parameter"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", parameter=field)
        self.field = field


class TransitionNotAllowed(DomainError):
    """An action that the event's current status does not allow."""

    status = 409
    code = "transition_not_allowed"

    def __init__(self, status: str, action: str, allowed: list[str] | tuple[str, ...]) -> None:
        allowed = sorted(allowed)
        listed = ", ".join(allowed) or _("none")
        super().__init__(
            _("action '%(action)s' is not allowed from status '%(status)s'; allowed: %(allowed)s")
            % {"action": action, "status": status, "allowed": listed},
            status=status,
            action=action,
            allowed=allowed,
        )


class StaleVersion(DomainError):
    """The event changed since the client read it (optimistic locking)."""

    status = 409
    code = "stale_version"

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(
            _("The event changed (version %(current)s, you sent %(expected)s): reload and retry.")
            % {"current": current, "expected": expected},
            version=current,
        )


class IdempotencyKeyReused(DomainError):
    """An ``Idempotency-Key`` sent again with a different request: it names one request only."""

    status = 422
    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(
            _(
                "Idempotency-Key: the key %(key)s was already used with a different request; send a new key "
                "for a new request, or the same body to retry"
            )
            % {"key": f"{key!r}"},
            parameter="Idempotency-Key",
        )


class NotPermitted(DomainError):
    """The user lacks the permission an action needs (403); the message names it."""

    status = 403
    code = "permission_denied"


class ActionNotPermitted(DomainError):
    """The reader's roles do not hold the duty of an action (README "Security", the role ×
    action table), or they resolved the case they now want to check, or wrote the public summary
    they now want to moderate (403)."""

    status = 403
    code = "action_not_permitted"

    def __init__(
        self, action: str, status: str, *, roles: list[str], resolver: bool = False, author: bool = False
    ) -> None:
        if author:
            message = _(
                "action '%(action)s': the author of a public summary may not moderate it; another moderator must"
            ) % {"action": action}
        elif resolver:
            message = _(
                "action '%(action)s': the user who resolved this case may not check it; another checker must"
            ) % {"action": action}
        else:
            message = _("action '%(action)s' on a '%(status)s' case is for the roles: %(roles)s") % {
                "action": action,
                "status": status,
                "roles": ", ".join(roles),
            }
        super().__init__(message, action=action, roles=roles)


class RecordNotFound(DomainError):
    """No such record, or none the user may see (404: the two are not told apart)."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The request is sound but the record's state refuses it (409); ``code`` says why
    (``four_eyes``, ``not_replayed``, ``stale_draft`` …)."""

    status = 409

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
