"""The data steward's import page in headless chromium: a city loaded kind by kind from the
browser (divisions CSV, community boundaries GeoJSON, grids GeoPackage, addresses XLSX, residents
CSV, units CSV), each a dry run first (counts, rejected rows and their report, the map preview),
then a commit; a grid redraw from a zipped Shapefile shows on the preview the address it would
move; then the command center's wall shows the imported residents and units in their grid."""

from __future__ import annotations

import csv
import re
import threading
import zipfile
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import expect

import geopandas as gpd

from importers.jobs import import_jobs_work
from importers.models import ImportJob
from layers.models import Address, Grid, Person, Region, Unit
from tests.worlds.grid_layout import COMMUNITY, box, by_code, layout, lonlat, write_geojson
from tests.worlds.registry_tables import CREDIT_A, CREDIT_B, ID_F, ID_M, write_csv, write_xlsx

S1, S2 = COMMUNITY + "010101", COMMUNITY + "010102"


@pytest.fixture
def worker(transactional_db, settings, tmp_path):
    """The import worker, in a thread of the test process (its own database connection)."""
    settings.MINQING_IMPORT_DIR = tmp_path / "imports"
    settings.MINQING_REPORT_DIR = tmp_path / "reports"
    stop = threading.Event()

    def work() -> None:
        try:
            import_jobs_work(stop=stop, poll=0.2)
        finally:
            connection.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """One file of each kind, written in its real format, for the tiny city of grid_layout."""
    folder = tmp_path / "files"
    folder.mkdir()
    divisions = write_csv(
        folder / "divisions.csv",
        ["code", "name", "level", "parent_code"],
        [
            ["620100000000", "兰州市", "city", ""],
            ["620102000000", "城关区", "district", "620100000000"],
            ["620102001000", "酒泉路街道", "street", "620102000000"],
            [COMMUNITY, "畅家巷社区", "community", "620102001000"],
            ["62010200100X", "坏编码社区", "community", "620102001000"],
        ],
    )
    boundaries = write_geojson(
        folder / "communities.geojson",
        [{"code": COMMUNITY, "name": "畅家巷社区", "geometry": box(0, 0, 1000, 1000)}],
    )
    grids = folder / "grids.gpkg"
    gpd.GeoDataFrame(layout(), geometry="geometry", crs=4326).to_file(grids, driver="GPKG", engine="pyogrio")
    # Addresses at 200 m east (in S1, next to its edge with S2) and 400 m east (in S2).
    points = {"A1": lonlat(200, 100), "A2": lonlat(200, 300), "A3": lonlat(400, 100)}
    addresses = write_xlsx(
        folder / "addresses.xlsx",
        ["地址编码", "经度", "纬度", "道路", "门牌号"],
        [
            [code, f"{lon:.7f}", f"{lat:.7f}", "畅家巷", f"{n}号"]
            for n, (code, (lon, lat)) in enumerate(points.items(), 1)
        ]
        + [["A9", "not-a-number", "36.05", "畅家巷", "9号"]],
    )
    persons = write_csv(
        folder / "persons.csv",
        ["姓名", "身份证号", "户籍类型", "地址编码"],
        [["张三", ID_F, "户籍", "A1"], ["李四", ID_M, "流动", "A2"]],
    )
    units = write_csv(
        folder / "units.csv",
        ["统一社会信用代码", "单位名称", "单位类型", "地址编码"],
        [[CREDIT_A, "畅家巷便利店", "enterprise", "A1"], [CREDIT_B, "畅家巷卫生站", "institution", "A3"]],
    )
    # The edge between S1 and S2 moves from 250 m to 150 m east: A1 and A2 (at 200 m) go to S2.
    rows = layout()
    by_code(rows)[S1]["geometry"] = box(0, 0, 150, 500)
    by_code(rows)[S2]["geometry"] = box(150, 0, 500, 500)
    shp = folder / "shp"
    shp.mkdir()
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)
    frame.rename(columns={"parent_code": "parent", "community_code": "community"}).to_file(
        shp / "grids.shp", engine="pyogrio"
    )
    redraw = folder / "grids-redraw.zip"
    with zipfile.ZipFile(redraw, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(shp.iterdir()):
            archive.write(part, part.name)
    return {
        "divisions": divisions,
        "boundaries": boundaries,
        "grids": grids,
        "addresses": addresses,
        "persons": persons,
        "units": units,
        "redraw": redraw,
    }


def dry_run(page, kind: str, path: Path, **options: str) -> int:
    """Upload ``path`` as ``kind`` with ``options`` (field id suffix → value); wait for the dry
    run to finish; return its job id."""
    page.select_option("#u-kind", kind)
    for name, value in options.items():
        field = page.locator(f"#o-{kind}-{name}")
        if field.evaluate("node => node.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.set_input_files("#u-file", str(path))
    page.click("#u-submit")
    expect(page.locator("#job-title")).to_contain_text(path.name)
    expect(page.locator("#job-status")).to_have_attribute(
        "data-status", re.compile("^(succeeded|failed)$"), timeout=60_000
    )
    return int(re.search(r"#job-(\d+)$", page.url)[1])


def commit(page, *, max_rejected: str | None = None) -> int:
    """Commit the dry run on screen; wait for the commit to succeed; return its job id."""
    if max_rejected is not None:
        page.fill("#c-max-rejected", max_rejected)
    page.click("#c-submit")
    expect(page.locator("#job-title")).to_contain_text("提交")
    expect(page.locator("#job-status")).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(page.locator("#job-status")).to_have_text("已提交")
    return int(re.search(r"#job-(\d+)$", page.url)[1])


def count(page, name: str) -> str:
    return page.locator(f'#job-counts tr[data-count="{name}"] td').inner_text()


def test_a_steward_imports_a_city_kind_by_kind_from_the_browser(
    open_page, login, role_user, worker, files, screenshot, tmp_path
):
    role_user("data_steward", username="steward")
    page = open_page(1440, 1000)
    login(page, "steward", next="/imports/")
    expect(page.locator("#jobs-state")).to_have_text("还没有导入。")

    # Divisions: one bad code; the dry run says the commit would fail, the report names the row.
    dry = dry_run(page, "divisions", files["divisions"])
    expect(page.locator("#job-status")).to_have_text("有被拒绝的行")
    expect(page.locator("#job-message")).to_contain_text("1 of 5 rows rejected")
    assert (count(page, "rows"), count(page, "rejected")) == ("5", "1")
    expect(page.locator("#job-rejection-rows tr")).to_have_count(1)
    expect(page.locator("#job-rejection-rows tr td").nth(0)).to_have_text("6")
    with page.expect_download() as download:
        page.click("#job-report")
    report = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert list(csv.reader(report.splitlines()))[0] == ["row", "field", "value", "reason"]
    assert report.splitlines()[1].startswith("6,code,62010200100X,")
    assert download.value.suggested_filename == f"divisions-divisions-{dry}-rejected.csv"
    assert not Region.objects.exists()
    expect(page.locator("#c-max-rejected")).to_have_value("1")  # offered: exactly what was rejected
    commit(page, max_rejected="1")
    assert Region.objects.count() == 4

    # Community boundaries (GeoJSON): a polygon on the preview, then committed.
    dry_run(page, "boundaries", files["boundaries"], level="community", code_field="code")
    expect(page.locator("#job-status")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#preview-map")).to_have_attribute("data-features", "1")
    commit(page)
    assert Region.objects.get(code=COMMUNITY).boundary is not None

    # Grids (GeoPackage): 14 grids on the preview, no topology problem.
    dry_run(page, "grids", files["grids"], valid_from="2024-01-01")
    assert (count(page, "created"), count(page, "rejected")) == ("14", "0")
    expect(page.locator("#preview-map")).to_have_attribute("data-features", "14")
    expect(page.locator("#job-topology")).to_be_hidden()
    commit(page)
    assert Grid.objects.count() == 14

    # Addresses (XLSX with Chinese headers), one bad coordinate accepted; residents; units.
    dry_run(page, "addresses", files["addresses"])
    expect(page.locator("#preview-map")).to_have_attribute("data-features", "3")
    commit(page, max_rejected="25%")
    dry_run(page, "persons", files["persons"])
    commit(page)
    dry_run(page, "units", files["units"])
    commit(page)
    assert dict(Address.objects.values_list("code", "grid__code")) == {"A1": S1, "A2": S1, "A3": S2}
    assert (Person.objects.count(), Unit.objects.count()) == (2, 2)

    # A grid redraw (zipped Shapefile): the preview shows what it would move to S2.
    dry_run(page, "grids", files["redraw"], valid_from="2024-07-01", parent_field="parent", community_field="community")
    assert (count(page, "redrawn"), count(page, "relinked")) == ("2", "5")  # 2 addresses, 2 persons, 1 unit
    # Orange: the two addresses and the unit at A1 (persons follow their address, with no point of their own).
    markers = page.locator("#preview-map path.leaflet-interactive[stroke='#ffffff'][fill='#e67e22']")
    expect(markers).to_have_count(3)
    screenshot(page, "imports-redraw")
    commit(page)
    assert set(Address.objects.values_list("grid__code", flat=True)) == {S2}
    assert ImportJob.objects.filter(action="commit", status="succeeded").count() == 7

    # The command center's wall shows the change: S2 now holds both residents and both units.
    role_user("command_center", username="command")
    wall = open_page(1920, 1080)
    login(wall, "command", next="/wall/")
    lon, lat = lonlat(300, 250)
    wall.evaluate(f"MinqingWall.map.setView([{lat}, {lon}], 16, {{animate: false}})")
    wall.wait_for_load_state("networkidle")
    point = wall.evaluate(f"MinqingWall.map.latLngToContainerPoint([{lat}, {lon}])")
    frame = wall.locator("#wall-map").bounding_box()
    wall.mouse.click(frame["x"] + point["x"], frame["y"] + point["y"])
    expect(wall.locator("#summary-title")).to_have_text(Grid.objects.get(code=S2).name)
    figures = wall.locator("#summary-figures div")
    expect(figures.filter(has_text="实有人口")).to_contain_text("2")
    expect(figures.filter(has_text="单位")).to_contain_text("2")
    screenshot(wall, "wall-after-import")


def test_the_import_page_is_for_stewards_only(open_page, login, role_user, problems):
    role_user("analyst", username="analyst")
    page = open_page()
    problems.allow("403")
    login(page, "analyst", next="/")
    response = page.goto("/imports/")
    assert response.status == 403
    expect(page.locator("body")).to_contain_text("当前账号不能打开此页面。")
