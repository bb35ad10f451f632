"""Filters of the monthly report's template: shares as percentages and signed changes."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def pct(value: float | None, digits: int = 1) -> str:
    """A share (0–1) as a percentage; ``—`` when there is none.

    >>> pct(0.98512), pct(None)
    ('98.5%', '—')
    """
    if value is None:
        return "—"
    return f"{value * 100:.{int(digits)}f}%"


@register.filter
def signed(value: float | int | None) -> str:
    """A change with its sign (``+3``, ``−2``, ``0``); ``—`` when there is none.

    >>> signed(3), signed(-2), signed(0), signed(None)
    ('+3', '−2', '0', '—')
    """
    if value is None:
        return "—"
    if value > 0:
        return f"+{value:g}"
    if value < 0:
        return f"−{-value:g}"
    return "0"


@register.filter
def signed_pct(value: float | None) -> str:
    """A relative change as a signed percentage.

    >>> signed_pct(0.125), signed_pct(-0.5), signed_pct(None)
    ('+12.5%', '−50.0%', '—')
    """
    if value is None:
        return "—"
    text = f"{abs(value) * 100:.1f}%"
    return f"+{text}" if value > 0 else (f"−{text}" if value < 0 else text)
