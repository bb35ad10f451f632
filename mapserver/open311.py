"""The Open311 GeoReport v2 edge: answer formats and the two encodings.

JSON, and XML built with :mod:`xml.etree.ElementTree` (which escapes text); errors as
GeoReport's list of ``{code, description}`` in either. What the answers hold (services and
service requests in GeoReport's vocabulary) is read by :mod:`layers.selectors.open311`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from django.http import HttpResponse

from .errors import NotFound

#: Answer formats, by path extension.
FORMATS = ("json", "xml")


def parse_format(value: str) -> str:
    """The answer format of a path extension; an unknown one is an unknown resource (404)."""
    if value not in FORMATS:
        raise NotFound(f"unknown format {value[:20]!r}; expected .json or .xml")
    return value


# --- encodings --------------------------------------------------------------------------------


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _element(tag: str, value: object) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, dict):
        for key, item in value.items():
            element.append(_element(key, item))
    elif isinstance(value, list):
        # GeoReport's XML names a list's items by the singular of the list: attributes/attribute.
        for item in value:
            element.append(_element(tag.removesuffix("s"), item))
    else:
        element.text = _text(value)
    return element


def xml_document(root: str, item: str | None, body: dict | Iterable[dict]) -> bytes:
    """``body`` as GeoReport XML: a list becomes ``<root><item>…</item>…</root>``, a dict
    ``<root>…</root>``."""
    if item is None:
        tree = _element(root, body)
    else:
        tree = ET.Element(root)
        for entry in body:
            tree.append(_element(item, entry))
    return ET.tostring(tree, encoding="utf-8", xml_declaration=True)


#: XML root and item element names of each answer.
XML_NAMES = {
    "services": ("services", "service"),
    "service_definition": ("service_definition", None),
    "requests": ("service_requests", "request"),
    "errors": ("errors", "error"),
}


def respond(body, *, fmt: str, kind: str, status: int = 200) -> HttpResponse:
    """The answer in ``fmt``: JSON (UTF-8, Chinese unescaped) or XML named per :data:`XML_NAMES`."""
    if fmt == "xml":
        root, item = XML_NAMES[kind]
        return HttpResponse(xml_document(root, item, body), status=status, content_type="text/xml; charset=utf-8")
    return HttpResponse(
        json.dumps(body, ensure_ascii=False), status=status, content_type="application/json; charset=utf-8"
    )


def errors_body(status: int, description: str) -> list[dict]:
    """GeoReport's error shape: a list of ``{code, description}`` (the code is the HTTP status)."""
    return [{"code": status, "description": description}]
