"""Compressed answers: brotli or gzip as the client's ``Accept-Encoding`` allows.

Used by both tile servers (:mod:`mapserver.tileplan`) and, for JSON answers, by
:class:`CompressionMiddleware` in Django. A compressed answer always carries its
``Content-Length`` (tiles must never go out chunked: performance-anchors §4), ``Content-Encoding``
and ``Vary: Accept-Encoding``.

Not compressed (BREACH): an answer that puts a secret beside text the requester controls. Views
that do (the session answer with its CSRF token, the reveals of personal data) set
``never_compress = True`` on their class or function; tiles and the JSON of data carry no secret.
"""

from __future__ import annotations

import gzip

import brotli
from django.utils.cache import patch_vary_headers

#: Encodings we produce, in the order we prefer them when the client takes several.
ENCODINGS = ("br", "gzip")
#: Below this many bytes compression gains less than its headers cost.
MIN_BYTES = 512
#: Levels: fast enough to compress a 500 KB tile in a few milliseconds, most of the gain kept.
BROTLI_QUALITY = 4
GZIP_LEVEL = 5
#: Media types of answers the middleware compresses (JSON in its variants; tiles are compressed
#: by the tile servers themselves).
JSON_TYPES = ("application/json", "application/geo+json", "application/vnd.oai.openapi+json", "application/schema+json")


def accepted_encoding(accept_encoding: str) -> str | None:
    """The encoding to answer in: ``br`` or ``gzip`` when the header accepts it (a q-value of 0
    refuses; ``*`` accepts any), ``br`` first; ``None`` for none.

    >>> [accepted_encoding(h) for h in ("gzip, deflate, br", "gzip", "br;q=0, gzip;q=0.5", "identity", "*", "")]
    ['br', 'gzip', 'gzip', None, 'br', None]
    """
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, _, rest = part.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        rest = rest.strip()
        if rest.startswith("q="):
            try:
                q = float(rest[2:])
            except ValueError:
                q = 0.0
        weights[name] = q
    for encoding in ENCODINGS:
        if weights.get(encoding, weights.get("*", 0.0)) > 0:
            return encoding
    return None


def compress(body: bytes, encoding: str) -> bytes:
    """``body`` in ``encoding`` (``br`` or ``gzip``). The gzip header's time is 0, so the same
    body always compresses to the same bytes (and caches and ETags agree)."""
    if encoding == "br":
        return brotli.compress(body, quality=BROTLI_QUALITY)
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def _compressible(response) -> bool:
    content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    return (
        content_type in JSON_TYPES
        and not response.streaming
        and not response.has_header("Content-Encoding")
        and len(response.content) >= MIN_BYTES
    )


class CompressionMiddleware:
    """Brotli or gzip for JSON answers a client takes compressed, except from views marked
    ``never_compress``. A strong ``ETag`` becomes weak (the bytes differ from the uncompressed
    answer's), as Django's GZipMiddleware does."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "_never_compress", False) or not _compressible(response):
            return response
        patch_vary_headers(response, ("Accept-Encoding",))
        encoding = accepted_encoding(request.headers.get("Accept-Encoding", ""))
        if encoding is None:
            return response
        response.content = compress(response.content, encoding)
        response["Content-Length"] = str(len(response.content))
        response["Content-Encoding"] = encoding
        etag = response.get("ETag")
        if etag and etag.startswith('"'):
            response["ETag"] = "W/" + etag
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        view = getattr(view_func, "view_class", None) or getattr(view_func, "cls", None) or view_func
        request._never_compress = bool(getattr(view, "never_compress", False))
