"""研判 in headless chromium on the tiny demo city's year: the monthly situation report page (a
leader chooses the district and last month; the report shows the figures the API gives, its PDF
downloads) and the dispatch rules page (an analyst drafts a change and replays it; the command
center, not the author, approves it). No serious or critical axe-core violation on either page;
every test fails on a console error, a failed request or one leaving the machine (conftest)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import worlds


@pytest.fixture
def demo_year(transactional_db):
    return worlds.demo_year()


def test_the_report_page_shows_last_month(demo_year, open_page, role_user, login, axe, screenshot):
    role_user("leader")
    page = open_page(1280, 800)
    login(page, "leader", next="/judgement/")
    assert page.locator("#area option").count() >= 3  # the city, the district, its streets
    page.select_option("#area", "620102000000")
    month = page.locator("#month").input_value()
    with page.expect_navigation():
        page.click("#report-form button[type=submit]")
    expect(page.locator("#headline")).to_be_visible()
    figures = page.request.get(f"/api/judgement/report?area=620102000000&month={month}").json()
    cases = page.locator("#headline tr[data-key=cases] td").nth(1).inner_text()
    assert cases == f"{figures['headline']['month']['cases']:,}"
    assert page.locator("article.mq-judgement img").count() == 8
    assert "城关区" in page.locator("article.mq-judgement h1").inner_text()
    pdf = page.request.get(page.locator("#report-links a").first.get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.body()[:5] == b"%PDF-"
    screenshot(page, "judgement")
    assert axe(page) == []


def test_the_rules_page_drafts_replays_and_another_approves(demo_year, open_page, role_user, login, axe, screenshot):
    role_user("analyst")
    role_user("command_center")
    page = open_page(1280, 800)
    login(page, "analyst", next="/rules/")
    text = page.locator("#rules").input_value()
    assert "漏水, water, 10" in text
    page.fill("#rules", text.replace("漏水, water, 10", "漏水, water, 10, municipal.water"))
    page.fill("#note", "邻里漏水归调解")
    with page.expect_navigation():
        page.click("#draft-form button[type=submit]")
    expect(page.locator("#changes")).to_contain_text("漏水")
    page.fill("#months", "12")
    with page.expect_navigation():
        page.click("#replay-form button[type=submit]")
    changed = int(page.locator("#replay-changed").inner_text())
    assert changed > 0
    expect(page.locator("#flows")).to_contain_text("水务局")
    expect(page.locator("#examples li").first).to_contain_text("water")
    assert page.locator("#approve-form").count() == 0  # never the author
    screenshot(page, "rules")
    assert axe(page) == []
    draft_url = page.url

    other = open_page(1280, 800)
    login(other, "command_center", next="/rules/")
    other.goto(draft_url)
    with other.expect_navigation():
        other.click("#approve-form button[type=submit]")
    expect(other.locator("[role=status]")).to_have_text(re.compile(r"版本 \d+ 现已生效"))
    assert axe(other) == []
