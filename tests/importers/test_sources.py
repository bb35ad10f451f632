"""read_table: CSV/TSV/XLSX into a frame of stripped strings numbered by the file's own rows.
(Whole-file refusals as the commands report them are tested in test_addresses.py.)"""

from __future__ import annotations

import pytest

from importers.sources import ROW, SourceError, read_table
from tests.worlds.registry_tables import write_xlsx


def records(frame) -> list[dict]:
    return frame.to_dict("records")


def test_values_are_stripped_text_and_blanks_are_empty_strings(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('\ufeff code , lon ,note\n 007 ,"103,83", NA \nnull,,"  "\n', encoding="utf-8")
    assert records(read_table(path)) == [
        {"code": "007", "lon": "103,83", "note": "NA", ROW: 2},
        {"code": "null", "lon": "", "note": "", ROW: 3},
    ]


def test_row_numbers_are_those_of_the_file_across_blank_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("code,lon\r\nA1,1\r\n\r\n,\r\nA2,x\r\n\r\n")
    assert records(read_table(path)) == [{"code": "A1", "lon": "1", ROW: 2}, {"code": "A2", "lon": "x", ROW: 5}]


def test_a_tsv_is_split_on_tabs(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("code\tname\nA1\t庆阳路, 1号\n")
    assert records(read_table(path)) == [{"code": "A1", "name": "庆阳路, 1号", ROW: 2}]


@pytest.mark.parametrize("encoding", [None, "gbk", "GB18030"])
def test_gbk_is_read_when_sniffed_or_named(tmp_path, encoding):
    path = tmp_path / "t.csv"
    path.write_bytes("地址编码,道路\nA1,庆阳路\n".encode("gbk"))
    assert records(read_table(path, encoding=encoding)) == [{"地址编码": "A1", "道路": "庆阳路", ROW: 2}]


def test_an_xlsx_sheet_gives_text_and_its_row_numbers(tmp_path):
    path = write_xlsx(tmp_path / "t.xlsx", ["code", "floor"], [["007", 5], ["", ""], ["A2", None]])
    assert records(read_table(path)) == [{"code": "007", "floor": "5", ROW: 2}, {"code": "A2", "floor": "", ROW: 4}]


#: file name → (content, required columns, expected SourceError text)
BAD = {
    "duplicate header": ("t.csv", b"code,lon,code\nA1,1,A1\n", (), "t.csv: duplicate column(s) code in the header"),
    "missing required": (
        "t.csv",
        b"code,lon\nA1,1\n",
        ("code", "lat", "road"),
        "t.csv: missing column(s) lat, road; the header has code, lon",
    ),
    "header then blank lines": ("t.csv", b"code,lon\n\n\n", (), "t.csv: the file has a header but no data rows"),
    "invalid byte on line 2": (
        "t.csv",
        b"code,lon\n\x80A1,1\n",
        (),
        "t.csv: line 2: bytes are not valid utf-8-sig or gb18030; re-save the file as UTF-8 or GBK or pass --encoding",
    ),
    "UTF-16 big-endian": (
        "t.csv",
        b"\xfe\xff" + "code\nA1\n".encode("utf-16-be"),
        (),
        "t.csv: the file is UTF-16; re-save it as UTF-8 or GBK",
    ),
    "an xls file": ("t.xls", b"\xd0\xcf\x11\xe0", (), "t.xls: unsupported table format .xls; expected .csv or .xlsx"),
}


@pytest.mark.parametrize(("name", "content", "required", "message"), BAD.values(), ids=BAD.keys())
def test_a_file_that_cannot_be_used_raises_a_source_error_naming_it(tmp_path, name, content, required, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError) as error:
        read_table(path, required=required)
    assert str(error.value) == message
    assert error.value.path == path
