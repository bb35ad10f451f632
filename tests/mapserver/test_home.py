"""The front door: what the database holds, where each user goes, the demo logins in development."""

from __future__ import annotations

import re

import pytest

from layers.services.users import demo_users_ensure

pytestmark = pytest.mark.django_db


def rows(html: str, table: str) -> list[list[str]]:
    body = re.search(rf'<table id="{table}">(.*?)</table>', html, re.S).group(1)
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd]>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


@pytest.mark.parametrize(
    ("language", "labels"),
    [
        ("zh-hans", ["区县", "街道", "社区", "小网格", "标准地址", "房屋", "实有人口", "实有单位"]),
        ("en", ["Districts", "Streets", "Communities", "Small grids", "Standard addresses", "Buildings",
                "Actual population", "Actual units"]),
    ],
)  # fmt: skip
def test_home_shows_the_counts_in_the_readers_language(city, client, language, labels):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    html = response.content.decode()
    assert rows(html, "counts") == [[label, "2" if label in ("小网格", "Small grids") else "1"] for label in labels]
    assert re.search(r"<h1>(.*?)</h1>", html).group(1) == {"zh-hans": "民情地图", "en": "Minqing Map"}[language]


def test_home_lists_only_entry_points_that_exist(client, superuser_client):
    html = client.get("/").content.decode()
    links = re.findall(r'<a href="([^"]+)">', re.search(r'<table id="entry-points">(.*?)</table>', html, re.S).group(1))
    assert "/admin/" in links and "/api/whoami" in links
    for link in links:
        assert superuser_client.get(link).status_code == 200, link


def test_home_shows_demo_logins_with_debug_on(grids_and_demo, client, settings):
    settings.DEBUG = True
    html = client.get("/").content.decode()
    logins = rows(html, "demo-logins")
    assert logins[0] == ["Username", "Role", "Password", "API token", "Area"]
    assert [row[:3] for row in logins[1:]] == [
        ["admin", "administrator", "minqing-demo"],
        ["command", "command_center", "minqing-demo"],
        ["analyst", "analyst", "minqing-demo"],
        ["leader", "leader", "minqing-demo"],
        ["steward", "data_steward", "minqing-demo"],
        ["gridworker", "grid_worker", "minqing-demo"],
        ["street", "street_staff", "minqing-demo"],
        ["community", "community_staff", "minqing-demo"],
    ]
    by_name = {row[0]: row for row in logins[1:]}
    assert by_name["gridworker"][3:] == [grids_and_demo["gridworker"].token, grids_and_demo["gridworker"].grid_code]
    assert by_name["community"][4] == grids_and_demo["community"].area_code == "620102001001"
    assert by_name["command"][4] == "—"


def test_home_hides_demo_logins_with_debug_off(grids_and_demo, client, settings):
    settings.DEBUG = False
    html = client.get("/").content.decode()
    assert 'id="demo-logins"' not in html
    assert "minqing-demo" not in html
    assert grids_and_demo["admin"].token not in html


@pytest.fixture
def grids_and_demo(city):
    return {login.username: login for login in demo_users_ensure()}
