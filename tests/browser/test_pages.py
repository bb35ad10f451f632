"""The pages' foundation in a real browser: login flow, language switch, JS translations, no
request leaving the machine."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest


def test_anonymous_user_is_sent_to_the_login_page_in_chinese_and_back_to_the_page(
    page, live_server, role_user, screenshot
):
    """/wall/ without a session → /accounts/login/?next=/wall/, in Chinese; logging in lands on /wall/."""
    role_user("command_center")
    page.goto(f"{live_server.url}/wall/")
    assert urlsplit(page.url).path == "/accounts/login/"
    assert "next=/wall/" in page.url
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.locator("#login-form button[type=submit]").inner_text() == "登录"
    screenshot(page, "login")
    page.fill("#id_username", "command_center")
    page.fill("#id_password", "minqing-demo")
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    assert urlsplit(page.url).path == "/wall/"


def test_wrong_password_is_refused_with_a_message(page, live_server, role_user):
    """A wrong password stays on the login page with an alert, and no console error."""
    role_user("command_center")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "command_center")
    page.fill("#id_password", "wrong")
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    assert page.locator("#login-error").inner_text() == "用户名或密码错误，或账号已停用。"


def test_language_switch_turns_the_page_and_the_js_catalog_to_english_and_back(page, live_server):
    """The 中文/English buttons post to set_language; the page and window.gettext follow."""
    page.goto(f"{live_server.url}/accounts/login/")
    assert page.evaluate("gettext('Network unavailable.')") == "网络不可用。"
    with page.expect_navigation():
        page.click(".mq-language button[value=en]")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#login-form button[type=submit]").inner_text() == "Log in"
    assert page.evaluate("gettext('Network unavailable.')") == "Network unavailable."
    with page.expect_navigation():
        page.click(".mq-language button[value=zh-hans]")
    assert page.locator("#login-form button[type=submit]").inner_text() == "登录"


def test_a_user_without_the_role_gets_the_403_page(open_page, live_server, role_user, login, problems):
    """An analyst may not open the wall: 403 page, not a redirect loop."""
    role_user("analyst")
    problems.allow("403")
    page = open_page()
    login(page, "analyst", next="/wall/")
    assert "当前账号不能打开此页面。" in page.locator("body").inner_text()


def test_problems_recorder_catches_console_errors_and_requests_off_the_machine(open_page, live_server, problems):
    """The recorder the other tests rely on does see errors (so their clean runs mean something),
    and chromium reaches no host but this one (a navigation is not bound by the page's CSP)."""
    from playwright.sync_api import Error as PlaywrightError

    page = open_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate("console.error('boom')")
    with pytest.raises(PlaywrightError, match="ERR_NAME_NOT_RESOLVED"):
        page.goto("http://example.invalid/x")
    found = problems.unexpected()
    assert any(entry.startswith("console error: boom") for entry in found), found
    assert "request off the machine: http://example.invalid/x" in found
    assert any(entry.startswith("request failed: GET http://example.invalid/x") for entry in found), found
    problems.allow("boom")
    problems.allow("example.invalid")
