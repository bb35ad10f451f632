"""Named parsers for request parameters.

Every parameter a view reads goes through one of these; each raises
:class:`~mapserver.errors.BadParameter` naming the parameter and the form it expects, so a
client always learns which field was wrong and never sees a 500 for bad input.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence

from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from layers.geocoding.crs import CLIENT_CRS, CRS84, OUTPUT_CRS, OutputCrs, output_crs_lookup, to_wgs84

from .errors import BadParameter

_MISSING = object()

#: Years a date-time parameter may name: wider than any record the platform holds, narrow enough
#: that day arithmetic and the database driver never overflow (year 1 or 9999 would).
DATE_YEARS = (1900, 2100)


def _raw(query: Mapping, name: str, default=_MISSING):
    value = query.get(name, None)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if default is _MISSING:
            raise BadParameter(name, _("is required"))
        return default
    return value.strip() if isinstance(value, str) else value


def parse_float(query: Mapping, name: str, *, low: float, high: float, default=_MISSING) -> float:
    """A finite number within [low, high] (present with an empty value, a 400)."""
    _refuse_empty(query, name, _("must be a number, got %(value)s"))
    raw = _raw(query, name, default)
    if raw is default and default is not _MISSING:
        return raw
    if isinstance(raw, bool):  # JSON true is not the number 1
        raise BadParameter(name, _("must be a number, got %(value)s") % {"value": f"{str(raw)[:40]!r}"})
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BadParameter(name, _("must be a number, got %(value)s") % {"value": f"{str(raw)[:40]!r}"}) from None
    if not math.isfinite(value):
        raise BadParameter(name, _("must be a finite number"))
    if not low <= value <= high:
        raise BadParameter(
            name,
            _("must be between %(low)s and %(high)s, got %(value)s")
            % {"low": f"{low:g}", "high": f"{high:g}", "value": f"{value:g}"},
        )
    return value


def parse_lon_lat(query: Mapping, *, lon: str = "lon", lat: str = "lat") -> tuple[float, float]:
    """A longitude and latitude in degrees; a pair that only makes sense swapped is named so."""
    lon_value = parse_float(query, lon, low=-180, high=180)
    lat_raw = _raw(query, lat)
    try:
        lat_value = float(lat_raw)
    except (TypeError, ValueError):
        raise BadParameter(lat, _("must be a number, got %(value)s") % {"value": f"{str(lat_raw)[:40]!r}"}) from None
    if not math.isfinite(lat_value):
        raise BadParameter(lat, _("must be a finite number"))
    if not -90 <= lat_value <= 90:
        if -90 <= lon_value <= 90 and -180 <= lat_value <= 180:
            raise BadParameter(
                lat,
                _("must be between -90 and 90, got %(lat_value)s; are %(lon)s and %(lat)s swapped?")
                % {"lat_value": f"{lat_value:g}", "lon": lon, "lat": lat},
            )
        raise BadParameter(lat, _("must be between -90 and 90, got %(lat_value)s") % {"lat_value": f"{lat_value:g}"})
    return lon_value, lat_value


def parse_choice(query: Mapping, name: str, choices: Sequence[str], *, default=_MISSING) -> str:
    """One of ``choices``; present with an empty value, a 400 (an empty value is none of them)."""
    value = query.get(name)
    if isinstance(value, str) and not value.strip():
        raise BadParameter(
            name, _("must be one of %(value)s, got %(value2)s") % {"value": ", ".join(choices), "value2": repr(value)}
        )
    raw = _raw(query, name, default)
    if raw is default and default is not _MISSING:
        return raw
    if raw not in choices:
        raise BadParameter(
            name,
            _("must be one of %(value)s, got %(value2)s")
            % {"value": ", ".join(choices), "value2": f"{str(raw)[:40]!r}"},
        )
    return raw


#: The longest text of one list parameter (items may repeat: they are read once).
LIST_TEXT_MAX = 2000


def parse_list(
    query: Mapping, name: str, *, max_items: int, max_length: int, choices: Sequence[str] | None = None
) -> list[str] | None:
    """A list given as repeated parameters, comma-separated values or both (``a,b`` and
    ``name=a&name=b`` alike, as GeoReport v2 says of its filters), in order, without repeats;
    ``None`` when the parameter is absent. An empty item (``a,,b``) is refused, as is a value
    outside ``choices`` when given.

    >>> from django.http import QueryDict
    >>> parse_list(QueryDict("c=a,b&c=b&c=d"), "c", max_items=5, max_length=9)
    ['a', 'b', 'd']
    """
    raws = query.getlist(name) if hasattr(query, "getlist") else ([query[name]] if name in query else [])
    if not raws:
        return None
    items: list[str] = []
    for raw in raws:
        for part in str(parse_text({name: raw}, name, max_length=LIST_TEXT_MAX, default="")).split(","):
            item = part.strip()
            if not item:
                raise BadParameter(name, _("must be a comma-separated list without empty items"))
            if choices is not None and item not in choices:
                raise BadParameter(
                    name,
                    _("must be one of %(value)s, got %(value2)s")
                    % {"value": ", ".join(choices), "value2": f"{item[:40]!r}"},
                )
            if len(item) > max_length:
                raise BadParameter(
                    name,
                    _("each item must be at most %(max_length)s characters, got %(value)s")
                    % {"max_length": max_length, "value": len(item)},
                )
            if item not in items:
                items.append(item)
    if len(items) > max_items:
        raise BadParameter(
            name, _("takes at most %(max_items)s values, got %(value)s") % {"max_items": max_items, "value": len(items)}
        )
    return items


def parse_crs(query: Mapping, name: str = "crs") -> str:
    """One of the client CRSs on the allow-list (default wgs84)."""
    value = query.get(name)
    if isinstance(value, str) and not value.strip():
        raise BadParameter(
            name,
            _("must be one of %(value)s, got %(value2)s") % {"value": ", ".join(CLIENT_CRS), "value2": repr(value)},
        )
    raw = _raw(query, name, "wgs84")
    return parse_choice({name: str(raw).lower()}, name, CLIENT_CRS)


def parse_int(query: Mapping, name: str, *, low: int, high: int, default=_MISSING) -> int:
    _refuse_empty(query, name, _("must be an integer, got %(value)s"))
    raw = _raw(query, name, default)
    if raw is default and default is not _MISSING:
        return raw
    try:
        value = int(str(raw))
    except ValueError:
        raise BadParameter(name, _("must be an integer, got %(value)s") % {"value": f"{str(raw)[:40]!r}"}) from None
    if not low <= value <= high:
        raise BadParameter(
            name, _("must be between %(low)s and %(high)s, got %(value)s") % {"low": low, "high": high, "value": value}
        )
    return value


def parse_text(query: Mapping, name: str, *, max_length: int, default=_MISSING) -> str:
    raw = _raw(query, name, default)
    if raw is default and default is not _MISSING:
        return raw
    if not isinstance(raw, str):
        raise BadParameter(name, _("must be text"))
    if len(raw) > max_length:
        raise BadParameter(
            name,
            _("must be at most %(max_length)s characters, got %(value)s")
            % {"max_length": max_length, "value": len(raw)},
        )
    if "\x00" in raw:
        # PostgreSQL text cannot hold NUL; the driver would refuse the query with a 500.
        raise BadParameter(name, _("must not contain NUL (\\u0000) characters"))
    return raw


def parse_date_param(query: Mapping, name: str, *, default=_MISSING) -> dt.date:
    """An ISO date, YYYY-MM-DD (present with an empty value, a 400)."""
    _refuse_empty(query, name, _("must be a date as YYYY-MM-DD, got %(value)s"))
    raw = _raw(query, name, default)
    if raw is default and default is not _MISSING:
        return raw
    try:
        value = parse_date(str(raw))
    except ValueError:
        value = None
    if value is None:
        raise BadParameter(name, _("must be a date as YYYY-MM-DD, got %(value)s") % {"value": f"{str(raw)[:40]!r}"})
    return value


def _refuse_empty(query: Mapping, name: str, expected: str) -> None:
    """A date or time parameter given with no value is a 400, not "absent": the schema says
    date-time, and an empty one is not (a client that meant "no bound" leaves the name out)."""
    value = query.get(name)
    if isinstance(value, str) and value.strip() == "":
        raise BadParameter(name, expected % {"value": repr(value[:40])})


#: The widest UTC offset in use anywhere (Kiribati's +14:00).
MAX_UTC_OFFSET = dt.timedelta(hours=14)


def parse_datetime_param(query: Mapping, name: str, *, default=_MISSING) -> dt.datetime:
    """An ISO 8601 date-time; one without a zone is taken as the server's zone (Asia/Shanghai).
    Present with an empty value, a 400."""
    _refuse_empty(query, name, _("must be an ISO 8601 date-time, got %(value)s"))
    raw = _raw(query, name, default)
    if raw is default and default is not _MISSING:
        return raw
    from django.utils import timezone

    try:
        value = parse_datetime(str(raw))
    except ValueError:
        value = None
    if value is None:
        day = None
        try:
            day = parse_date(str(raw))
        except ValueError:
            pass
        if day is None:
            raise BadParameter(
                name, _("must be an ISO 8601 date-time, got %(value)s") % {"value": f"{str(raw)[:40]!r}"}
            )
        value = dt.datetime.combine(day, dt.time())
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    elif abs(value.utcoffset()) > MAX_UTC_OFFSET:
        # ISO 8601 allows offsets to ±23:59, PostgreSQL only to ±15:59: the same instant in the
        # server's zone.
        value = timezone.localtime(value)
    if not DATE_YEARS[0] <= value.year <= DATE_YEARS[1]:
        raise BadParameter(
            name,
            _("must lie between the years %(DATE_YEARS0)s and %(DATE_YEARS1)s, got %(value)s")
            % {"DATE_YEARS0": DATE_YEARS[0], "DATE_YEARS1": DATE_YEARS[1], "value": value.year},
        )
    return value


def parse_bbox(query: Mapping, name: str = "bbox") -> tuple[float, float, float, float] | None:
    """``lon_min,lat_min,lon_max,lat_max`` in WGS84 degrees, min below max, inside the world."""
    raw = _raw(query, name, None)
    if raw is None:
        return None
    parts = str(raw).split(",")
    if len(parts) != 4:
        raise BadParameter(name, _("must be lon_min,lat_min,lon_max,lat_max"))
    try:
        lon_min, lat_min, lon_max, lat_max = (float(part) for part in parts)
    except ValueError:
        raise BadParameter(name, _("must be four numbers: lon_min,lat_min,lon_max,lat_max")) from None
    if not all(math.isfinite(v) for v in (lon_min, lat_min, lon_max, lat_max)):
        raise BadParameter(name, _("must be four finite numbers"))
    if not (-180 <= lon_min <= 180 and -180 <= lon_max <= 180 and -90 <= lat_min <= 90 and -90 <= lat_max <= 90):
        raise BadParameter(name, _("must lie within -180,-90,180,90"))
    if lon_min >= lon_max or lat_min >= lat_max:
        raise BadParameter(name, _("minimum must be below maximum"))
    return lon_min, lat_min, lon_max, lat_max


def parse_accept(header: str, offers: Sequence[str]) -> str | None:
    """The media type of ``offers`` that an Accept ``header`` weighs most (the most specific
    matching range gives an offer its weight, as RFC 9110 says), the first offer on a tie, or
    ``None`` when the header accepts none of them. An empty header accepts anything.

    >>> parse_accept("text/html,application/xhtml+xml,*/*;q=0.8", ["application/json", "text/html"])
    'text/html'
    >>> parse_accept("application/geo+json, application/json", ["application/json", "application/geo+json"])
    'application/json'
    >>> parse_accept("image/png", ["application/json"]) is None
    True
    """
    if not header.strip():
        return offers[0] if offers else None
    ranges = []
    for item in header.split(","):
        media_type, *options = (part.strip() for part in item.split(";"))
        weight = 1.0
        for option in options:
            key, _sep, value = option.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    weight = 0.0
        ranges.append((media_type.lower(), weight))
    best, best_weight = None, 0.0
    for offer in offers:
        kind = offer.split("/")[0]
        specific = [
            (3 if t == offer else 2 if t == f"{kind}/*" else 1, w)
            for t, w in ranges
            if t in (offer, f"{kind}/*", "*/*")
        ]
        if specific:
            weight = max(specific)[1]
            if weight > best_weight:
                best, best_weight = offer, weight
    return best


def parse_output_crs(query: Mapping, name: str = "crs") -> OutputCrs:
    """A CRS of the OGC allow-list (:data:`layers.geocoding.crs.OUTPUT_CRS`), named by URI, ``[EPSG:n]`` or
    ``EPSG:n``; CRS84 when absent."""
    raw = _raw(query, name, None)
    if raw is None:
        return CRS84
    crs = output_crs_lookup(str(raw))
    if crs is None:
        raise BadParameter(
            name,
            _("unsupported CRS %(value)s; supported: %(names)s")
            % {"value": f"{str(raw)[:80]!r}", "names": ", ".join(OUTPUT_CRS)},
        )
    return crs


def parse_bbox_in_crs(query: Mapping, name: str = "bbox", crs_name: str = "bbox-crs"):
    """``bbox`` in the CRS ``bbox-crs`` names (CRS84 when absent), in that CRS's axis order
    (EPSG:4326 and EPSG:4490: ``lat_min,lon_min,lat_max,lon_max``; EPSG:4544: northing first).
    Returns ``(x_min, y_min, x_max, y_max)`` in PostGIS order and the SRID, or ``None``."""
    crs = parse_output_crs(query, crs_name)
    if crs is CRS84:
        box = parse_bbox(query, name)
        return None if box is None else (box, crs.srid)
    raw = _raw(query, name, None)
    if raw is None:
        return None
    parts = str(raw).split(",")
    if len(parts) != 4:
        raise BadParameter(name, _("must be four numbers in the axis order of %(crs)s") % {"crs": crs.uri})
    try:
        a_min, b_min, a_max, b_max = (float(part) for part in parts)
    except ValueError:
        raise BadParameter(name, _("must be four numbers in the axis order of %(crs)s") % {"crs": crs.uri}) from None
    if not all(math.isfinite(v) for v in (a_min, b_min, a_max, b_max)):
        raise BadParameter(name, _("must be four finite numbers"))
    if a_min >= a_max or b_min >= b_max:
        raise BadParameter(name, _("minimum must be below maximum"))
    if crs.srid in (4326, 4490) and not (-90 <= a_min and a_max <= 90 and -180 <= b_min and b_max <= 180):
        raise BadParameter(name, _("must be lat_min,lon_min,lat_max,lon_max within -90,-180,90,180"))
    box = (b_min, a_min, b_max, a_max) if crs.axes_swapped else (a_min, b_min, a_max, b_max)
    return box, crs.srid


#: A rough box around China (lon_min, lat_min, lon_max, lat_max, degrees): a point outside it is
#: a client error (swapped or zeroed coordinates, a wrong CRS), never something to geocode.
CHINA_BOX = (73.0, 3.0, 136.0, 54.0)


def parse_china_lon_lat(query: Mapping, *, lon: str = "lon", lat: str = "lat") -> tuple[float, float]:
    """As :func:`parse_lon_lat`, and inside the rough box around China (:data:`CHINA_BOX`)."""
    lon_value, lat_value = parse_lon_lat(query, lon=lon, lat=lat)
    lon_min, lat_min, lon_max, lat_max = CHINA_BOX
    if not lon_min <= lon_value <= lon_max:
        raise BadParameter(
            lon,
            _("%(lon_value)s is outside China (longitude %(lon_min)s to %(lon_max)s)")
            % {"lon_value": f"{lon_value:g}", "lon_min": f"{lon_min:g}", "lon_max": f"{lon_max:g}"},
        )
    if not lat_min <= lat_value <= lat_max:
        raise BadParameter(
            lat,
            _("%(lat_value)s is outside China (latitude %(lat_min)s to %(lat_max)s)")
            % {"lat_value": f"{lat_value:g}", "lat_min": f"{lat_min:g}", "lat_max": f"{lat_max:g}"},
        )
    return lon_value, lat_value


def parse_point_wgs84(query: Mapping) -> tuple[float, float]:
    """``lon``, ``lat`` inside China in the client CRS ``crs`` (default wgs84; gcj02 and bd09 are
    converted), as WGS84 longitude and latitude."""
    lon, lat = parse_china_lon_lat(query)
    return tuple(float(v) for v in to_wgs84(lon, lat, parse_crs(query)))


# --- JSON bodies --------------------------------------------------------------------------------
# A JSON body is a mapping like a query string: the parsers above read its fields by name. A
# nested object's keys get its name as a prefix, so a bad ``lon`` inside ``location`` is
# reported as ``location.lon``.


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


#: Deepest nesting of arrays and objects a JSON body may have (ours need three).
MAX_JSON_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_problem(value: object) -> str | None:
    """Why a parsed JSON value cannot be used, or ``None``: nesting beyond :data:`MAX_JSON_DEPTH`,
    or a lone surrogate (``\\ud800``), which JSON's escapes can write but no text encoding can
    carry (the database would refuse it). Walks the value without recursion.

    >>> from django.utils.translation import override
    >>> with override("en"):
    ...     _json_problem({"a": ["x"]}) is None, print(_json_problem({"a": ["x" + chr(0xD800)]}))
    a lone surrogate (\\ud800) in a string is not a character
    (True, None)
    """
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            texts = (item,)
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                return _("nested deeper than %(levels)d levels") % {"levels": MAX_JSON_DEPTH}
            children = list(item.values()) if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in reversed(children))
            texts = tuple(item) if isinstance(item, dict) else ()
        else:
            continue
        for text in texts:
            surrogate = _SURROGATE.search(text)
            if surrogate is not None:
                return _("a lone surrogate (%(code)s) in a string is not a character") % {
                    "code": f"\\u{ord(surrogate.group()):04x}"
                }
    return None


def parse_json_object(raw: bytes, name: str = "body") -> dict:
    """A request body holding one JSON object.

    Python's reader accepts ``NaN`` and ``Infinity``; they are read here so that the field's own
    parser rejects them naming the field (every number parser requires a finite value). Nesting
    too deep for the reader, or beyond :data:`MAX_JSON_DEPTH`, and lone surrogates are refused
    here, naming the problem."""
    if not raw.strip():
        raise BadParameter(name, _("must be a JSON object, got an empty body"))
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise BadParameter(
            name,
            _("is not valid JSON: %(value)s at line %(value2)s column %(value3)s")
            % {"value": error.msg, "value2": error.lineno, "value3": error.colno},
        ) from None
    except RecursionError:
        problem = _("nested deeper than %(levels)d levels") % {"levels": MAX_JSON_DEPTH}
        raise BadParameter(name, _("is not valid JSON: %(problem)s") % {"problem": problem}) from None
    except ValueError:  # bytes that are not UTF-8 (nor UTF-16/32)
        raise BadParameter(name, _("is not valid JSON: not UTF-8 text")) from None
    problem = _json_problem(value)
    if problem is not None:
        raise BadParameter(name, _("is not valid JSON: %(problem)s") % {"problem": problem})
    if not isinstance(value, dict):
        raise BadParameter(name, _("must be a JSON object, got %(value)s") % {"value": _json_type(value)})
    return value


def check_query_size(query_string: str) -> None:
    """Refuse a query string of more parameters than Django reads (``DATA_UPLOAD_MAX_NUMBER_FIELDS``)
    before anything parses it, naming the limit.

    >>> check_query_size("a=1&b=2")
    """
    from django.conf import settings

    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    if limit is not None and query_string.count("&") >= limit and sum(1 for p in query_string.split("&") if p) > limit:
        raise BadParameter(
            "query", _("more than %(limit)s parameters (at most %(limit)s are read)") % {"limit": f"{limit:,}"}
        )


def parse_object(body: Mapping, name: str, *, default=_MISSING) -> dict | None:
    """A nested JSON object, its keys prefixed with ``name.`` for the parsers applied to it."""
    raw = body.get(name)
    if raw is None:
        if default is _MISSING:
            raise BadParameter(name, _("is required"))
        return default
    if not isinstance(raw, dict):
        raise BadParameter(name, _("must be a JSON object, got %(value)s") % {"value": _json_type(raw)})
    return {f"{name}.{key}": value for key, value in raw.items()}


def parse_json_location(body: Mapping, name: str = "location") -> tuple[float, float, str] | None:
    """``{"lon": …, "lat": …, "crs": …}``: a point inside China in a client CRS (default wgs84);
    ``None`` when the body has no such object. The CRS is read first: a wrong one explains
    coordinates that look out of place."""
    location = parse_object(body, name, default=None)
    if location is None:
        return None
    crs = parse_crs(location, f"{name}.crs")
    lon, lat = parse_china_lon_lat(location, lon=f"{name}.lon", lat=f"{name}.lat")
    return lon, lat, crs


# --- the grid worker's page -----------------------------------------------------------------------

#: The id a tablet gives a write it may queue and send again (a UUID, usually): letters, digits,
#: ``-`` and ``_``, 8 to 60 characters (it becomes part of a 64-character external id).
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,60}")


def parse_client_id(query: Mapping, name: str = "client_id", *, default=_MISSING) -> str:
    """A client-generated id for an idempotent write (see :data:`_CLIENT_ID`)."""
    raw = parse_text(query, name, max_length=200, default=default)
    if raw is default and default is not _MISSING:
        return raw
    if not _CLIENT_ID.fullmatch(raw):
        raise BadParameter(
            name, _("must be 8 to 60 letters, digits, '-' or '_' (a UUID), got %(value)s") % {"value": f"{raw[:40]!r}"}
        )
    return raw


# --- tiles and layer filters ---------------------------------------------------------------------

#: A category filter value: a family (``dispute``) or a category code (``hazard.fire``).
_CATEGORY_PATTERN = r"[a-z][a-z_]*(\.[a-z][a-z_]*)*"


def parse_tile(z: str, x: str, y: str, *, max_zoom: int) -> tuple[int, int, int]:
    """Tile coordinates from a URL: ``0 ≤ z ≤ max_zoom`` and ``0 ≤ x, y < 2**z``."""
    zoom = parse_int({"z": z}, "z", low=0, high=max_zoom)
    last = (1 << zoom) - 1
    return zoom, parse_int({"x": x}, "x", low=0, high=last), parse_int({"y": y}, "y", low=0, high=last)


def parse_category(query: Mapping, name: str, *, default=_MISSING) -> str:
    """A category family or code: lower-case words joined by dots, at most 40 characters
    (present with an empty value, a 400)."""
    _refuse_empty(query, name, _("must be a category family or code such as hazard.fire, got %(value)s"))
    raw = parse_text(query, name, max_length=40, default=default)
    if raw is default and default is not _MISSING:
        return raw
    if not re.fullmatch(_CATEGORY_PATTERN, raw):
        raise BadParameter(
            name, _("must be a category family or code such as hazard.fire, got %(value)s") % {"value": f"{raw[:40]!r}"}
        )
    return raw


def parse_layer_filters(query: Mapping, filters: Sequence) -> dict[str, object]:
    """The values of a catalog layer's filters present in the query (name → parsed value); any
    other query parameter is refused, naming it and the ones the layer accepts."""
    accepted = {f.name: f for f in filters}
    unknown = sorted(set(query) - set(accepted))
    if unknown:
        known = ", ".join(accepted) if accepted else "none"
        raise BadParameter(
            ", ".join(unknown), _("unknown query parameter; this layer accepts: %(known)s") % {"known": known}
        )
    values: dict[str, object] = {}
    for name, condition in accepted.items():
        if condition.parser == "datetime":
            _refuse_empty(query, name, _("must be an ISO 8601 date-time, got %(value)s"))
        if _raw(query, name, None) is None:
            continue
        if condition.parser == "choice":
            values[name] = parse_choice(query, name, condition.choices)
        elif condition.parser == "datetime":
            values[name] = parse_datetime_param(query, name)
        elif condition.parser == "category":
            values[name] = parse_category(query, name)
        elif condition.parser == "code":
            # Region codes have 12 characters, grid codes up to 24.
            values[name] = parse_text(query, name, max_length=24)
        else:  # a catalog entry naming a parser that does not exist is a programming error
            raise ValueError(f"filter {name!r} names an unknown parser {condition.parser!r}")
    return values


# --- durable intake -------------------------------------------------------------------------------

#: An idempotency key: visible ASCII but the double quote, 1 to 255 characters (a UUID is usual).
_IDEMPOTENCY_KEY = re.compile(r"[\x21\x23-\x7e]{1,255}")


def parse_idempotency_key(headers: Mapping, name: str = "Idempotency-Key") -> str | None:
    """The ``Idempotency-Key`` request header, or ``None`` when it is absent. Both the bare form
    (``Idempotency-Key: 8e03978e-…``) and the IETF draft's quoted string (``"8e03978e-…"``) are
    read; the quotes are not part of the key."""
    raw = headers.get(name)
    if raw is None:
        return None
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise BadParameter(
            name,
            _("must be 1 to 255 visible ASCII characters (a UUID, say), got %(value)s") % {"value": f"{raw[:40]!r}"},
        )
    return value


# --- areas (the analyst workbench) ----------------------------------------------------------------

_REGION_CODE = re.compile(r"[0-9]{12}")
#: A grid code: its community's 12-digit code, then a serial (import_grids checks the prefix).
_GRID_CODE = re.compile(r"[0-9]{12}[0-9A-Za-z_-]{1,12}")


def parse_region_code(query: Mapping, name: str = "region", *, default=_MISSING) -> str:
    """A 12-digit statistical region code (city, district, street or community); ASCII digits
    only (``str.isdigit`` would take full-width ones)."""
    raw = _raw(query, name, default)
    if raw is default and default is not _MISSING:
        return raw
    if not _REGION_CODE.fullmatch(str(raw)):
        raise BadParameter(name, _("must be a 12-digit region code, got %(value)s") % {"value": f"{str(raw)[:40]!r}"})
    return raw


def parse_grid_code(query: Mapping, name: str = "grid", *, default=_MISSING) -> str:
    """A grid code: the 12-digit community code followed by a serial, at most 24 characters."""
    raw = _raw(query, name, default)
    if raw is default and default is not _MISSING:
        return raw
    if not _GRID_CODE.fullmatch(str(raw)):
        raise BadParameter(
            name,
            _("must be a grid code (a 12-digit community code and a serial, up to 24 characters), got %(value)s")
            % {"value": f"{str(raw)[:40]!r}"},
        )
    return raw


# --- the command-center wall ----------------------------------------------------------------------

#: The longest time window a dashboard figure reads, days.
WINDOW_MAX_DAYS = 366
#: A region or grid code in a URL: 12-digit region codes, grid codes (community code + serial).
_AREA_CODE = re.compile(r"[0-9A-Za-z_-]{4,24}")


def parse_window(query: Mapping, *, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``since`` and ``until`` (ISO 8601, as the heat tiles take them): the window
    ``[since, until)`` on the time of receipt. Defaults: since the start of the day until ends in
    (server's zone; today when until is not given), until ``now``. ``until`` must be after ``since``, at most :data:`WINDOW_MAX_DAYS`."""
    from django.utils import timezone

    local = timezone.localtime(now)
    since = parse_datetime_param(query, "since", default=None)
    until = parse_datetime_param(query, "until", default=None)
    if since is None:
        # The start of the day until ends in (today by default): a window is never empty.
        end = timezone.localtime(until - dt.timedelta(microseconds=1)) if until is not None else local
        since = end.replace(hour=0, minute=0, second=0, microsecond=0)
    if until is None:
        until = max(now, since + dt.timedelta(seconds=1))
    if until <= since:
        raise BadParameter("until", _("must be after since"))
    if until - since > dt.timedelta(days=WINDOW_MAX_DAYS):
        raise BadParameter(
            "until",
            _("the window from since to until must be at most %(WINDOW_MAX_DAYS)s days")
            % {"WINDOW_MAX_DAYS": WINDOW_MAX_DAYS},
        )
    return since, until


def parse_area_code(value: str, name: str = "code") -> str:
    """A region or grid code from a URL path (see :data:`_AREA_CODE`)."""
    if not _AREA_CODE.fullmatch(value or ""):
        raise BadParameter(
            name,
            _("must be a region or grid code (4 to 24 letters, digits, _ or -), got %(value)s")
            % {"value": f"{value[:40]!r}"},
        )
    return value


# --- personal data --------------------------------------------------------------------------------

#: Fewest characters a purpose must have once trimmed: "回访" (a call back) is enough, "x" is not.
PURPOSE_MIN = 2
PURPOSE_MAX = 200
#: What :func:`parse_purpose` accepts, as a pattern (the OpenAPI schema states it): once trimmed,
#: two or more characters, none of them a control character (C0 or C1). The first and last are
#: spelled out as neither a control nor anything Python's ``strip`` removes, because ``\s``
#: differs between regex dialects (U+0085 is whitespace to Python, not to ECMAScript).
_PURPOSE_EDGE = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
PURPOSE_PATTERN = rf"^\s*{_PURPOSE_EDGE}[^\x00-\x1f\x7f-\x9f]*{_PURPOSE_EDGE}\s*$"


def parse_purpose(query: Mapping, name: str = "purpose", *, default=_MISSING) -> str:
    """Why personal data is revealed or exported: 2 to 200 characters of text on one line (it is
    written into the audit log as given)."""
    raw = parse_text(query, name, max_length=PURPOSE_MAX, default=default)
    if raw is default and default is not _MISSING:
        return raw
    if len(raw) < PURPOSE_MIN:
        raise BadParameter(
            name,
            _("must say why the data is needed, at least %(PURPOSE_MIN)s characters") % {"PURPOSE_MIN": PURPOSE_MIN},
        )
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in raw):
        raise BadParameter(name, _("must be one line of text (no control characters)"))
    return raw


def parse_bool(query: Mapping, name: str, *, default=_MISSING) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``on``/``off``, as HTML forms send checkboxes)."""
    raw = _raw(query, name, default)
    if raw is default and default is not _MISSING:
        return raw
    value = str(raw).lower()
    if value in ("true", "1", "on", "yes"):
        return True
    if value in ("false", "0", "off", "no"):
        return False
    raise BadParameter(name, f"must be true or false, got {str(raw)[:40]!r}")


def parse_rejection_limit(query: Mapping, name: str = "max_rejected"):
    """Rejected rows a person accepts: a number of rows (``25``) or a percentage (``2.5%``)."""
    from importers.report import RejectionLimit

    raw = _raw(query, name, default="0")
    try:
        return RejectionLimit.parse(str(raw))
    except ValueError as error:
        raise BadParameter(name, str(error)) from None


def parse_importer_options(query: Mapping, options: Sequence) -> dict[str, object]:
    """The parameters an importer declares (:class:`importers.base.Option`) as the keywords of
    its ``__init__`` (JSON values: dates as YYYY-MM-DD); a blank optional one is left to the
    importer's default."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    parsed: dict[str, object] = {}
    for option in options:
        default = _MISSING if option.required else None
        if option.kind == "choice":
            value = parse_choice(query, option.name, tuple(c for c in option.choices if c), default=default)
        elif option.kind == "date":
            day = parse_date_param(query, option.name, default=default)
            value = day.isoformat() if day is not None else None  # kept as JSON on the job
        elif option.kind == "bool":
            value = parse_bool(query, option.name, default=default)
        else:
            value = parse_text(query, option.name, max_length=100, default=default)
        if value is None:
            continue
        if option.name == "source_crs":
            try:
                CRS.from_user_input(value)
            except CRSError:
                raise BadParameter(option.name, f"not a known CRS, got {value[:40]!r} (try EPSG:4490)") from None
        parsed[option.name] = value
    return parsed


# --- the residents' side (小兰帮办) ------------------------------------------------------------------

#: The header that carries a follow-up token: never in a URL (logs, history, Referer).
FOLLOW_TOKEN_HEADER = "X-Follow-Token"  # noqa: S105 - a header name, not a secret


def parse_follow_token(headers: Mapping, name: str = FOLLOW_TOKEN_HEADER) -> str:
    """The follow-up token of a resident's case from its header; whether it opens a case is the
    service's to say (a made-up token is a 404 like an unknown one)."""
    raw = headers.get(name)
    if raw is None or not raw.strip():
        raise BadParameter(name, "is required: the token of the follow-up link (the part after #)")
    value = raw.strip()
    if len(value) > 100 or not value.isascii() or not value.isprintable():
        raise BadParameter(name, "must be the token of a follow-up link (letters, digits, - and _)")
    return value


_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


def parse_month(query: Mapping, name: str = "month", *, default=_MISSING) -> dt.date:
    """A calendar month ``YYYY-MM`` as the date of its first day, within :data:`DATE_YEARS`.

    >>> parse_month({"month": "2026-05"})
    datetime.date(2026, 5, 1)
    """
    _refuse_empty(query, name, _("must be a month as YYYY-MM, got %(value)s"))
    raw = _raw(query, name, default)
    if raw is default and default is not _MISSING:
        return raw
    found = _MONTH.fullmatch(str(raw))
    if found is None or not 1 <= int(found.group(2)) <= 12:
        raise BadParameter(name, _("must be a month as YYYY-MM, got %(value)s") % {"value": f"{str(raw)[:40]!r}"})
    year = int(found.group(1))
    if not DATE_YEARS[0] <= year <= DATE_YEARS[1]:
        raise BadParameter(
            name,
            _("must lie between the years %(DATE_YEARS0)s and %(DATE_YEARS1)s, got %(value)s")
            % {"DATE_YEARS0": DATE_YEARS[0], "DATE_YEARS1": DATE_YEARS[1], "value": year},
        )
    return dt.date(year, int(found.group(2)), 1)


_RULE_SEPARATORS = re.compile(r"\s*[,，\t]\s*")
#: Words that mark a rule of the keyword library inactive in its text form.
RULE_OFF = ("off", "停用")


def parse_rules_text(query: Mapping, name: str = "rules", *, max_length: int = 200_000) -> list[dict]:
    """The keyword library as the rules page writes it: one rule a line, ``keyword, department
    code[, priority[, category code[, off]]]`` (commas, full-width commas or tabs; priority 10
    and every category by default; ``off`` or ``停用`` for an inactive rule; blank lines and lines
    starting with ``#`` skipped). The values are checked by the service.

    >>> parse_rules_text({"rules": "漏水, water, 10, municipal.water\\n# note\\n火灾，fire，20"})[1]
    {'keyword': '火灾', 'department': 'fire', 'priority': 20, 'category': None, 'active': True}
    """
    text = parse_text(query, name, max_length=max_length)
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = _RULE_SEPARATORS.split(line)
        if not 2 <= len(parts) <= 5:
            raise BadParameter(
                name,
                _("line %(n)s: expected keyword, department[, priority[, category[, off]]], got %(value)s")
                % {"n": number, "value": f"{line[:60]!r}"},
            )
        priority = 10
        if len(parts) > 2 and parts[2]:
            try:
                priority = int(parts[2])
            except ValueError:
                raise BadParameter(
                    name,
                    _("line %(n)s: priority must be an integer, got %(value)s")
                    % {"n": number, "value": f"{parts[2]!r}"},
                ) from None
        category = parts[3] if len(parts) > 3 and parts[3] not in ("", "*") else None
        if len(parts) > 4 and parts[4] and parts[4] not in RULE_OFF:
            raise BadParameter(
                name,
                _("line %(n)s: the fifth value may only be off, got %(value)s")
                % {"n": number, "value": f"{parts[4]!r}"},
            )
        rules.append(
            {"keyword": parts[0], "department": parts[1], "priority": priority, "category": category,
             "active": not (len(parts) > 4 and parts[4] in RULE_OFF)}
        )  # fmt: skip
    return rules


def rules_text(rules: list[dict]) -> str:
    """The text form :func:`parse_rules_text` reads, one rule a line."""
    lines = []
    for rule in rules:
        parts = [rule["keyword"], rule["department"], str(rule["priority"])]
        if rule.get("category") or not rule.get("active", True):
            parts.append(rule.get("category") or "*")
        if not rule.get("active", True):
            parts.append("off")
        lines.append(", ".join(parts))
    return "\n".join(lines)
