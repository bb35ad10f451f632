"""Display names in the reader's language.

Coded values (statuses, channels, gender, care tags …) carry English msgids translated by the
catalogs (``locale/zh_Hans``). The taxonomy's categories and departments are rows, each with a
Chinese ``name`` and an English ``name_en``: :func:`localized` picks the one for the language
active in the request (Django's ``LocaleMiddleware``). Proper names of places and people are
never translated.
"""

from __future__ import annotations

from django.utils.translation import get_language


def english() -> bool:
    """True when the active language is English."""
    return (get_language() or "").startswith("en")


def localized(name: str | None, name_en: str | None) -> str | None:
    """``name_en`` for an English reader when one is on record, else ``name``.

    >>> from django.utils import translation
    >>> with translation.override("en"):
    ...     localized("消防隐患", "Fire hazard"), localized("消防隐患", "")
    ('Fire hazard', '消防隐患')
    >>> with translation.override("zh-hans"):
    ...     localized("消防隐患", "Fire hazard")
    '消防隐患'
    """
    return name_en if name_en and english() else name
