"""Request-body parsers for views that read the body themselves.

Views taking a JSON body read ``request.body`` through the named parsers of
:mod:`mapserver.params` (exact messages naming the field). DRF's CSRF check of a session login
reads ``request.POST``, which runs the view's parsers and so consumes the body stream before the
view gets to it (``RawPostDataException``, a 500). These parsers declare the media type (for
content negotiation and the OpenAPI schema) and leave the stream untouched.
"""

from __future__ import annotations

from rest_framework.parsers import BaseParser


class BodyLeftToTheView(BaseParser):
    """A JSON body, read by the view itself."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> dict:
        return {}


class ImageLeftToTheView(BodyLeftToTheView):
    """An image body, read by the view itself: any declared type (Pillow decides what it is)."""

    media_type = "*/*"
