"""Settings read from the environment: each value parsed in one place, and every problem kept
until the settings are read whole, then reported together (one ``ImproperlyConfigured`` with a
line per problem), so that an operator fixes a bad environment in one pass rather than one start
at a time. ``settings/base.py`` calls :func:`check` last; a leaf module with requirements of its
own (``settings/prod.py``) states them before it imports the base."""

from __future__ import annotations

import os
from collections.abc import Sequence

from django.core.exceptions import ImproperlyConfigured

_problems: list[str] = []


def problem(message: str) -> None:
    """Keep a problem found while reading the settings (reported by :func:`check`)."""
    _problems.append(message)


def integer(name: str, default: str, *, minimum: int | None = None) -> int:
    """``name`` as an integer (``default`` when unset); a malformed value is a problem, and the
    default stands in for it until :func:`check` reports it."""
    raw = os.environ.get(name, default)
    try:
        value = int(raw)
    except ValueError:
        problem(f"{name} must be an integer, got {raw!r}")
        return int(default)
    if minimum is not None and value < minimum:
        problem(f"{name} must be at least {minimum}, got {value}")
    return value


def number(name: str, default: str, *, minimum: float | None = None, unit: str = "") -> float:
    """``name`` as a number (``default`` when unset); NaN is below every minimum."""
    raw = os.environ.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        problem(f"{name} must be a number, got {raw!r}")
        return float(default)
    if minimum is not None and not value >= minimum:
        problem(f"{name} must be at least {minimum:g}{f' ({unit})' if unit else ''}, got {value:g}")
    return value


def choice(name: str, default: str, choices: Sequence[str]) -> str:
    """``name`` as one of ``choices``."""
    value = os.environ.get(name, default)
    if value not in choices:
        problem(f"{name} must be {' or '.join(choices)}, got {value!r}")
        return default
    return value


def required(name: str, why: str = "") -> str:
    """``name``, which must be set and not empty."""
    value = os.environ.get(name, "")
    if not value:
        problem(f"{name} must be set{why}")
    return value


def check() -> None:
    """Raise ``ImproperlyConfigured`` listing every problem kept so far (and forget them)."""
    if _problems:
        found = list(_problems)
        _problems.clear()
        raise ImproperlyConfigured("\n".join(found))
