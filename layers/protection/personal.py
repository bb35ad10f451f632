"""Personal data at rest: ID numbers and phones are never stored in clear text.

Each value becomes three columns: an AES-GCM ciphertext (reversible with the key, for an
audited reveal), a keyed HMAC-SHA256 digest (exact lookup and upsert without decrypting), and
the masked form shown by default. The key comes from ``MINQING_PERSONAL_DATA_KEY``.

A rotation sets a new key and moves the old one to ``MINQING_PERSONAL_DATA_KEY_PREVIOUS``:
writes use the current key, reads try the current key and then the previous ones (decryption,
digests matched by :func:`digests`), until ``manage.py rotate_personal_data_key`` has rewritten
every value under the current key (``layers/services/key_rotation.py``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Protected:
    cipher: str
    digest: str
    masked: str


CURRENT = "MINQING_PERSONAL_DATA_KEY"
PREVIOUS = "MINQING_PERSONAL_DATA_KEY_PREVIOUS"


def _decoded(key_text: str, name: str = CURRENT) -> bytes:
    try:
        key = base64.urlsafe_b64decode(key_text)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} is not URL-safe base64") from error
    if len(key) != 32:
        raise ImproperlyConfigured(f"{name} must decode to 32 bytes, got {len(key)}")
    return key


def _current_text() -> str:
    if not settings.MINQING_PERSONAL_DATA_KEY:
        raise ImproperlyConfigured(f"{CURRENT} is not set")
    return settings.MINQING_PERSONAL_DATA_KEY


def _previous_texts() -> list[str]:
    """The previous keys as configured (a list, or one comma-separated string), newest first,
    each checked like the current key; one equal to the current key is refused (a rotation that
    set the new key in both places would rewrite nothing)."""
    configured = getattr(settings, PREVIOUS, None) or []
    texts = configured.split(",") if isinstance(configured, str) else list(configured)
    return list(_checked_previous(_current_text(), tuple(t.strip() for t in texts)))


@lru_cache(maxsize=8)
def _checked_previous(current: str, texts: tuple[str, ...]) -> tuple[str, ...]:
    # Cached: every decryption asks for the keys; the settings change only in tests.
    for number, text in enumerate(texts, start=1):
        name = f"{PREVIOUS} entry {number}"
        if not text:
            raise ImproperlyConfigured(f"{name} is empty")
        if _decoded(text, name) == _decoded(current):
            raise ImproperlyConfigured(f"{name} is the current key ({CURRENT}): give the keys used before it")
    return texts


def master_key() -> bytes:
    """The key itself, for deriving a subkey of another purpose (the audit anchors' HMAC, the
    residents' follow-up tokens); never use it directly."""
    return _decoded(_current_text())


def master_keys() -> tuple[bytes, ...]:
    """The current key, then the previous ones (``MINQING_PERSONAL_DATA_KEY_PREVIOUS``, newest
    first): what a reader of data written before a rotation derives its subkeys from."""
    return (master_key(), *(_decoded(text, PREVIOUS) for text in _previous_texts()))


@lru_cache(maxsize=8)
def _keys(key_text: str) -> tuple[AESGCM, bytes]:
    key = _decoded(key_text)
    # Separate subkeys so the lookup digest reveals nothing about the encryption key.
    encryption_key = hmac.new(key, b"minqing:encrypt", hashlib.sha256).digest()
    digest_key = hmac.new(key, b"minqing:digest", hashlib.sha256).digest()
    return AESGCM(encryption_key), digest_key


def _current_keys() -> tuple[AESGCM, bytes]:
    return _keys(_current_text())


def _all_keys() -> list[tuple[AESGCM, bytes]]:
    """The subkeys of the current key, then of each previous one (index 0: current)."""
    return [_current_keys(), *(_keys(text) for text in _previous_texts())]


def rotating() -> bool:
    """Whether previous keys are configured (a rotation under way)."""
    return bool(_previous_texts())


def key_labels() -> list[str]:
    """Names of the keys :func:`decrypt_with_index` and :func:`digest_index` number: ``current``, then
    ``previous 1`` (the newest previous key), ``previous 2`` …"""
    return ["current", *(f"previous {n}" for n in range(1, len(_previous_texts()) + 1))]


def cipher() -> AESGCM:
    """The AES-GCM cipher under the current key (bulk paths encrypt many values with it)."""
    return _current_keys()[0]


def digest(value: str) -> str:
    """Keyed digest for exact lookup: equal values give equal digests, nothing else leaks."""
    return hmac.new(_current_keys()[1], value.encode(), hashlib.sha256).hexdigest()


def digests(value: str) -> list[str]:
    """The digest of ``value`` under the current key, then under each previous key: a lookup
    matches any of them, so rows not yet rewritten by ``rotate_personal_data_key`` are found."""
    return [hmac.new(key, value.encode(), hashlib.sha256).hexdigest() for _, key in _all_keys()]


def digest_index(value: str, stored: str) -> int | None:
    """Which key (index into :func:`key_labels`) ``stored`` is the digest of ``value`` under;
    ``None`` for none of them."""
    found = digests(value)
    return found.index(stored) if stored in found else None


def encrypt(value: str) -> str:
    aead, _ = _current_keys()
    nonce = os.urandom(12)
    return base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, value.encode(), None)).decode()


def decrypt_with_index(token: str) -> tuple[str, int]:
    """The clear text of ``token`` and the index of the key that opened it (0: the current key,
    then the previous ones, newest first). Raises :class:`UnreadableValue` when none does: an
    AES-GCM tag that fails under a key means the value was not written under that key."""
    try:
        raw = base64.urlsafe_b64decode(token)
    except ValueError:
        raise UnreadableValue("not URL-safe base64") from None
    if len(raw) < 12 + 16:
        raise UnreadableValue("too short to be a ciphertext")
    for index, (aead, _) in enumerate(_all_keys()):
        try:
            return aead.decrypt(raw[:12], raw[12:], None).decode(), index
        except InvalidTag:
            continue
    raise UnreadableValue("no configured key opens it")


def decrypt(token: str) -> str:
    """The clear text of ``token``, under the current key or a previous one."""
    return decrypt_with_index(token)[0]


class UnreadableValue(ValueError):
    """A ciphertext that no configured key opens (written under a key no longer configured, or
    damaged)."""


def mask_id_number(value: str) -> str:
    """Region code and check character kept; the birth date and the sequence number hidden. A
    value too short to have both (a typo in a rejected row, say) is hidden whole.

    Why so much: what other surfaces show must not complete the mask. Gender (the parity of the
    17th character) and age in years are shown beside it; with the birth date and sequence
    hidden, about 180,000 numbers fit a mask, gender and age, and the check character leaves
    some 16,000 of them — where a mask keeping the last four would leave ~60 once the age is
    known, and exactly one once a birth date is.

    >>> mask_id_number("62010219800101123X")
    '620102***********X'
    >>> mask_id_number("6201021980")
    '**********'
    """
    if len(value) < 14:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 7) + value[-1:]


def age_on(birth: dt.date, today: dt.date) -> int:
    """Age in whole years on ``today``.

    >>> age_on(dt.date(1980, 2, 29), dt.date(2026, 2, 28)), age_on(dt.date(1980, 2, 29), dt.date(2026, 3, 1))
    (45, 46)
    """
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def mask_phone(value: str) -> str:
    """Carrier prefix and last four kept (full-width digits read as digits).

    >>> mask_phone("13912345678")
    '139****5678'
    >>> mask_phone("0931-8123456")
    '0931****3456'
    >>> mask_phone("+86 139 1234 5678")
    '+86****5678'
    """
    digits = value.replace("-", "").replace(" ", "").translate(_FULL_WIDTH)
    if len(digits) <= 7:
        return "*" * len(digits)
    head = 4 if digits.startswith("0") else 3
    return digits[:head] + "****" + digits[-4:]


def mask_name(value: str) -> str:
    """The family name kept, the given name hidden (a reporter's name on an event).

    >>> mask_name("张三丰")
    '张**'
    >>> mask_name("")
    ''
    """
    return value[:1] + "*" * (len(value) - 1)


# --- personal data inside free text ------------------------------------------------------------------

#: Full-width digits as citizens type them on a phone keyboard (one character each: positions stay).
_FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789Xx")
#: An ID number (GB 11643: 17 digits and a digit or X), not part of a longer run of characters.
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
#: A mainland mobile number (1[3-9] and nine digits), spaced or hyphenated as people write them,
#: with or without +86; or a landline with its area code (0931-8123456).
_PHONE_IN_TEXT = re.compile(
    r"(?<![0-9])(?:(?:\+?86)[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?![0-9])|(?<![0-9])0\d{2,3}-\d{7,8}(?![0-9])"
)


def mask_free_text(text: str) -> str:
    """``text`` with every ID number and phone number in it masked as its column would be
    (citizens write them into descriptions: "我的电话13912345678"). Full-width digits count.

    >>> mask_free_text("联系电话：１３９-1234-5678，身份证62010219800101123X，门牌18号")
    '联系电话：139****5678，身份证620102***********X，门牌18号'
    >>> mask_free_text("订单号 202605011234567890123 与座机 0931-8123456")
    '订单号 202605011234567890123 与座机 0931****3456'
    """
    plain = text.translate(_FULL_WIDTH)
    found = [(m.start(), m.end(), mask_id_number(m.group().upper())) for m in _ID_IN_TEXT.finditer(plain)]
    found += [(m.start(), m.end(), mask_phone(m.group())) for m in _PHONE_IN_TEXT.finditer(plain)]
    if not found:
        return text
    parts, last = [], 0
    for start, end, masked in sorted(found):
        if start < last:
            continue  # a phone inside an ID number already masked
        parts += [text[last:start], masked]
        last = end
    return "".join(parts) + text[last:]


def protect_id_number(value: str) -> Protected:
    return Protected(encrypt(value), digest(value), mask_id_number(value))


def protect_phone(value: str) -> Protected:
    return Protected(encrypt(value), digest(value), mask_phone(value))
