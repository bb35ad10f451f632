"""Check digits of Chinese national identifiers.

GB 11643-1999 citizen ID numbers and GB 32100-2015 unified social credit codes both end in a
check character computed from a weighted sum of the others; a single mistyped character (and
most transpositions) changes it, which is why importers reject rows whose check fails.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

#: GB 11643 weights of the first 17 digits and the check characters by remainder mod 11.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"

_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def id_number_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits.

    >>> id_number_check_char("11010519491231002")
    'X'
    """
    total = sum(int(digit) * weight for digit, weight in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def id_number_problem(value: str) -> str | None:
    """Why ``value`` is not a valid 18-character citizen ID number, or ``None`` if it is.

    >>> id_number_problem("11010519491231002X") is None
    True
    >>> id_number_problem("110105194912310021")
    'check digit is 1, expected X'
    >>> id_number_problem("110105194902300026")
    'birth date 19490230 is not a date'
    """
    if len(value) != 18:
        return f"must be 18 characters, got {len(value)}"
    # isascii too: str.isdigit() and int() accept full-width (１) and other Unicode digits, which
    # would pass here yet give another digest than the same number typed in ASCII.
    if not (value.isascii() and value[:17].isdigit() and (value[17].isdigit() or value[17] == "X")):
        return "must be 17 digits and a digit or X"
    try:
        birth = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return f"birth date {value[6:14]} is not a date"
    if birth.year < 1890 or birth > timezone.localdate():
        return f"birth date {value[6:14]} is out of range"
    expected = id_number_check_char(value[:17])
    if value[17] != expected:
        return f"check digit is {value[17]}, expected {expected}"
    return None


def id_number_facts(value: str) -> tuple[dt.date, str]:
    """Birth date and gender ('M'/'F') encoded in a valid ID number.

    >>> id_number_facts("11010519491231002X")
    (datetime.date(1949, 12, 31), 'F')
    """
    birth = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    return birth, "M" if int(value[16]) % 2 else "F"


def credit_code_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters.

    >>> credit_code_check_char("91350100M000100Y4")
    '3'
    """
    total = sum(_CREDIT_ALPHABET.index(char) * weight for char, weight in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_ALPHABET[(31 - total % 31) % 31]


def credit_code_problem(value: str) -> str | None:
    """Why ``value`` is not a valid unified social credit code, or ``None`` if it is.

    >>> credit_code_problem("91350100M000100Y43") is None
    True
    >>> credit_code_problem("91350100M000100Y44")
    'check character is 4, expected 3'
    >>> credit_code_problem("91350100M00010OY43")
    "character 'O' is not allowed (GB 32100 uses 0-9 and A-Y without I, O, S, V, Z)"
    """
    if len(value) != 18:
        return f"must be 18 characters, got {len(value)}"
    for char in value:
        if char not in _CREDIT_ALPHABET:
            return f"character {char!r} is not allowed (GB 32100 uses 0-9 and A-Y without I, O, S, V, Z)"
    expected = credit_code_check_char(value[:17])
    if value[17] != expected:
        return f"check character is {value[17]}, expected {expected}"
    return None
