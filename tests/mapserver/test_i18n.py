"""Message catalogs: both languages complete, none fuzzy, and none behind the code."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import translation

from layers.errors import ActionNotPermitted, TransitionNotAllowed
from layers.services.gridwork import PhotoTooLarge
from layers.services.residents import TooManyReports

LOCALE = Path(settings.BASE_DIR) / "locale"
CATALOGS = sorted(LOCALE.glob("*/LC_MESSAGES/*.po"))


def _statistics(path: Path) -> str:
    result = subprocess.run(  # noqa: S603 - fixed arguments, our own file
        ["msgfmt", "--check-format", "--check-domain", "--statistics", "-o", "/dev/null", str(path)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.strip()


def test_there_are_catalogs_for_both_languages_and_both_domains():
    names = {str(path.relative_to(LOCALE)) for path in CATALOGS}
    assert {
        "zh_Hans/LC_MESSAGES/django.po",
        "zh_Hans/LC_MESSAGES/djangojs.po",
        "en/LC_MESSAGES/django.po",
        "en/LC_MESSAGES/djangojs.po",
    } <= names


@pytest.mark.parametrize("catalog", CATALOGS, ids=lambda p: str(p.relative_to(LOCALE)))
def test_catalog_has_no_untranslated_or_fuzzy_entry(catalog):
    """msgfmt's statistics say only "N translated messages."."""
    statistics = _statistics(catalog)
    assert re.fullmatch(r"\d+ translated messages?\.", statistics), f"{catalog}: {statistics}"


def _msgids(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    ids = set()
    for block in re.findall(r'^msgid ((?:".*"\n)+)', text + "\n", flags=re.M):
        value = "".join(re.findall(r'"(.*)"', block))
        if value:
            ids.add(value)
    return ids


#: Top-level folders whose code holds no messages for the catalogs (scripts/messages.sh skips them too).
NOT_SCANNED = {"locale", "node_modules", "var", "tests", "scripts"}


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_catalogs_hold_every_message_of_the_code(tmp_path, monkeypatch, domain):
    """makemessages over the code finds no msgid the committed catalog lacks (run
    scripts/messages.sh after adding a string).

    It runs in a scratch tree of symlinks to the code: makemessages writes each message to the
    locale folder nearest above its file, which in the repository is the committed one."""
    if shutil.which("xgettext") is None:
        pytest.fail("xgettext is missing: scripts/setup.sh installs gettext")
    for entry in Path(settings.BASE_DIR).iterdir():
        if entry.is_dir() and not entry.name.startswith(".") and entry.name not in NOT_SCANNED:
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / "locale").mkdir()
    monkeypatch.chdir(tmp_path)
    with override_settings(LOCALE_PATHS=[tmp_path / "locale"]):
        call_command(
            "makemessages",
            locale=["en"],
            domain=domain,
            verbosity=0,
            no_location=True,
            symlinks=True,
            ignore_patterns=["*.min.js"],
        )
    found = _msgids(tmp_path / "locale" / "en" / "LC_MESSAGES" / f"{domain}.po")
    committed = _msgids(LOCALE / "zh_Hans" / "LC_MESSAGES" / f"{domain}.po")
    assert sorted(found - committed) == []


def test_chinese_is_the_default_and_english_is_available():
    """Compiled catalogs are in use (setup.sh compiles them): the same msgid in both languages."""
    with translation.override("zh-hans"):
        assert translation.gettext("Log in") == "登录"
    with translation.override("en"):
        assert translation.gettext("Log in") == "Log in"


# Errors whose messages were once written in both languages at once; now msgids that follow the
# reader's language (the Chinese comes from the catalog).
_TRANSLATED_ERRORS = [
    (
        lambda: TransitionNotAllowed("closed", "close", ["reopen", "rate"]),
        "action 'close' is not allowed from status 'closed'; allowed: rate, reopen",
        "状态 closed 下不能执行 close（可执行：rate, reopen）",
    ),
    (
        lambda: ActionNotPermitted("moderate", "pending", roles=["moderator"], author=True),
        "action 'moderate': the author of a public summary may not moderate it; another moderator must",
        "不能审核自己撰写的摘要（操作 moderate：须由另一位审核员审核）",
    ),
    (
        lambda: TooManyReports(limit=2, hours=24, retry_after=60),
        "phone: this phone number sent 2 reports within 24 hours; try again later or call 12345",
        "phone: 该手机号 24 小时内已提交 2 条诉求，请稍后再试或拨打 12345",
    ),
    (
        lambda: PhotoTooLarge(size=2_000_000, limit=1_000_000),
        "photo: the photo is 2,000,000 bytes; at most 1,000,000 bytes are accepted",
        "photo: 照片 2,000,000 字节，超过上限 1,000,000 字节",
    ),
]


@pytest.mark.parametrize(("make", "english", "chinese"), _TRANSLATED_ERRORS)
def test_an_errors_message_follows_the_readers_language(make, english, chinese):
    """The message is made in the active language; its facts (action, status, numbers) stay."""
    with translation.override("en"):
        assert make().message == english
    with translation.override("zh-hans"):
        assert make().message == chinese


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "message"),
    [("en", "imports are for data stewards and administrators"), ("zh-hans", "导入仅限数据管理员和管理员")],
)
def test_an_api_refusal_is_said_in_the_language_the_client_asks_for(django_user_model, language, message):
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(django_user_model.objects.create_user("plain"))
    response = client.get("/api/imports")
    assert response.status_code == 403
    assert response.json() == {"error": {"code": "permission_denied", "message": message}}
