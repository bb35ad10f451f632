"""Logs without credentials: Open311 clients put their ``api_key`` in the query string, and an
access log that keeps the request line keeps the key. :func:`redact` blanks the values of
credential parameters in a URL or a request line; :class:`RedactCredentials` applies it to
every record of a logger (uvicorn's access log and Django's request log, see
scripts/uvicorn-logging*.json and settings/base.py ``LOGGING``); :class:`JsonFormatter` writes
them as JSON lines where a log shipper reads them (``MINQING_LOG_FORMAT=json``).

Standard library only: uvicorn configures its logging before the application (and Django) is
loaded.
"""

from __future__ import annotations

import json
import logging
import re

#: Query parameters whose values are credentials (matched case-insensitively).
CREDENTIAL_PARAMETERS = ("api_key", "apikey", "token", "access_token", "key", "password", "secret", "sessionid")

_CREDENTIAL = re.compile(
    r"(?P<name>[?&;](?:" + "|".join(CREDENTIAL_PARAMETERS) + r"))=(?P<value>[^&;#\s\"]*)", re.IGNORECASE
)


def redact(text: str) -> str:
    """``text`` with every credential parameter's value replaced by ``[redacted]``.

    >>> redact("GET /open311/v2/requests.json?api_key=9944b09199c62bcf&service_code=a HTTP/1.1")
    'GET /open311/v2/requests.json?api_key=[redacted]&service_code=a HTTP/1.1'
    >>> redact("/ogc/collections?f=json&TOKEN=x")
    '/ogc/collections?f=json&TOKEN=[redacted]'
    >>> redact("/api/events?category=hazard.key")
    '/api/events?category=hazard.key'
    """
    return _CREDENTIAL.sub(lambda m: f"{m['name']}=[redacted]", text)


class RedactCredentials(logging.Filter):
    """Blanks credentials in a record's message and its string arguments (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (time, level, logger, message, and the exception if any), for a
    log shipper to read without parsing prose. Credentials are blanked by the filter above,
    which runs before any formatter."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)
