"""Archives the importers open (zipped Shapefiles, XLSX workbooks) are checked before anything
is unpacked: a member name that is absolute or climbs out with "..", a zip bomb (a member that
expands too many times), too many bytes or members in all are refused with one message naming
the file; a normal zipped Shapefile and workbook still read."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from django.test import override_settings

import geopandas as gpd
from shapely.geometry import box

from importers.sources import SourceError, check_archive, read_features, read_table
from tests.worlds.registry_tables import ADDRESS_HEADER, address_row, write_xlsx


def zipped_shapefile(folder: Path, name: str = "grids.zip", *, extra: dict[str, bytes] | None = None) -> Path:
    frame = gpd.GeoDataFrame({"code": ["G1", "G2"]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326)
    shp = folder / "shp"
    shp.mkdir(exist_ok=True)
    frame.to_file(shp / "grids.shp", engine="pyogrio")
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(shp.iterdir()):
            archive.write(part, part.name)
        for member, content in (extra or {}).items():
            archive.writestr(member, content)
    return path


def test_a_zipped_shapefile_and_a_workbook_still_read(tmp_path):
    frame = read_features(zipped_shapefile(tmp_path))
    assert list(frame["code"]) == ["G1", "G2"]
    workbook = write_xlsx(tmp_path / "addresses.xlsx", ADDRESS_HEADER, [address_row("A1")])
    assert list(read_table(workbook)["code"]) == ["A1"]


@pytest.mark.parametrize(
    "member, message",
    [
        ("../evil.txt", "grids.zip: member '../evil.txt' has an absolute path or climbs out with '..'; refused"),
        ("/etc/cron.d/evil", "grids.zip: member '/etc/cron.d/evil' has an absolute path or climbs out with '..'; refused"),
        ("docs/../../evil.txt", "grids.zip: member 'docs/../../evil.txt' has an absolute path or climbs out with '..'; refused"),
        ("C:/Windows/evil.dll", "grids.zip: member 'C:/Windows/evil.dll' has an absolute path or climbs out with '..'; refused"),
        ("..\\evil.txt", "grids.zip: member '..\\\\evil.txt' has an absolute path or climbs out with '..'; refused"),
    ],
)  # fmt: skip
def test_member_names_that_escape_are_refused(tmp_path, member, message):
    path = zipped_shapefile(tmp_path, extra={member: b"x"})
    with pytest.raises(SourceError) as caught:
        read_features(path)
    assert str(caught.value) == message


def test_a_zip_bomb_is_refused(tmp_path):
    """2 MiB of zeros deflate to about 2 KiB: a thousand-fold expansion."""
    path = zipped_shapefile(tmp_path, extra={"padding.dbf": bytes(2 * 1024 * 1024)})
    compressed = zipfile.ZipFile(path).getinfo("padding.dbf").compress_size
    with pytest.raises(SourceError) as caught:
        read_features(path)
    assert str(caught.value) == (
        f"grids.zip: member 'padding.dbf' expands from {compressed:,} to 2,097,152 bytes (more than 200 times): "
        "refused as a possible zip bomb"
    )


def test_a_workbook_bomb_is_refused_before_the_workbook_is_opened(tmp_path):
    workbook = write_xlsx(tmp_path / "persons.xlsx", ADDRESS_HEADER, [address_row("A1")])
    with zipfile.ZipFile(workbook, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/huge.bin", bytes(4 * 1024 * 1024))
    with pytest.raises(SourceError) as caught:
        read_table(workbook)
    assert str(caught.value).startswith("persons.xlsx: member 'xl/media/huge.bin' expands from ")
    with zipfile.ZipFile(tmp_path / "escape.xlsx", "w") as archive:
        archive.writestr("../../escape.xml", "<x/>")
    with pytest.raises(SourceError) as caught:
        read_table(tmp_path / "escape.xlsx")
    assert str(caught.value) == (
        "escape.xlsx: member '../../escape.xml' has an absolute path or climbs out with '..'; refused"
    )


@override_settings(MINQING_ARCHIVE_MAX_BYTES=100)
def test_too_many_bytes_in_all(tmp_path):
    path = zipped_shapefile(tmp_path)
    total = sum(m.file_size for m in zipfile.ZipFile(path).infolist())
    with pytest.raises(SourceError) as caught:
        check_archive(path)
    assert str(caught.value) == f"grids.zip: the archive expands to {total:,} bytes; at most 100 are accepted"


@override_settings(MINQING_ARCHIVE_MAX_MEMBERS=3)
def test_too_many_members(tmp_path):
    path = zipped_shapefile(tmp_path)
    count = len(zipfile.ZipFile(path).infolist())
    with pytest.raises(SourceError) as caught:
        read_features(path)
    assert str(caught.value) == f"grids.zip: the archive holds {count:,} members; at most 3 are accepted"


def test_a_damaged_archive_names_the_file(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SourceError) as caught:
        check_archive(path)
    assert str(caught.value) == "broken.zip: not a readable zip archive (File is not a zip file)"


def test_the_import_command_reports_the_refusal(tmp_path):
    """The whole-file error reaches the command line with nothing written."""
    from django.core.management import CommandError, call_command

    path = zipped_shapefile(tmp_path, extra={"../evil.txt": b"x"})
    with pytest.raises(CommandError) as caught:
        call_command("import_grids", str(path), "--commit", verbosity=0)
    assert str(caught.value) == (
        "grids.zip: member '../evil.txt' has an absolute path or climbs out with '..'; refused; nothing was written"
    )
