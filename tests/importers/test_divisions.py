"""import_divisions: the 12-digit hierarchy from CSV (UTF-8, GBK) and XLSX, with every bad row reported."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from importers.base import run_import
from importers.divisions import DivisionsImporter
from layers.models import Region

pytestmark = pytest.mark.django_db

HEADER = "code,name,level,parent_code,area_code,street_code"
#: A valid branch: rows 2-5 of every small file below.
BRANCH = [
    "620100000000,兰州市,city,620000000000,,",
    "620102000000,城关区,district,620100000000,620102,",
    "620102001000,酒泉路街道,street,620102000000,620102,620102001",
    "620102001001,中山林社区,community,620102001000,620102,620102001",
]


@pytest.fixture(autouse=True)
def reports_in_tmp(settings, tmp_path):
    settings.MINQING_REPORT_DIR = tmp_path / "reports"


def write_csv(tmp_path: Path, lines: list[str], *, name: str = "divisions.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join([HEADER, *lines]) + "\n").encode(encoding))
    return path


def levels() -> dict[str, int]:
    return dict(Region.objects.values_list("level").annotate(n=Count("id")))


@pytest.mark.shared_data
def test_real_hierarchy_imports_every_level_and_is_idempotent(shared_data):
    """The NBS 2023 file gives 1 city, 9 districts, 116 streets, 1,177 communities, each under
    a parent of the level above; importing it again changes nothing."""
    path = shared_data("divisions", "lanzhou_hierarchy_12digit.csv")
    call_command("import_divisions", str(path), "--commit", verbosity=0)

    assert levels() == {"city": 1, "district": 9, "street": 116, "community": 1177}
    assert Region.objects.get(code="620100000000").parent is None
    for level, parent_level in Region.PARENT_LEVEL.items():
        assert not Region.objects.filter(level=level).exclude(parent__level=parent_level).exists()
    assert Region.objects.get(code="620171000000").name == "兰州新区"

    report = run_import(DivisionsImporter(), path, commit=True)
    assert report.counts == {"rows": 1303, "created": 0, "updated": 0, "unchanged": 1303, "rejected": 0}


def test_dry_run_writes_nothing_and_reports_what_it_would_do(tmp_path, capsys):
    path = write_csv(tmp_path, BRANCH)
    call_command("import_divisions", str(path))
    out = capsys.readouterr().out
    assert "divisions.csv: dry run (nothing written; pass --commit to write): rows 4, created 4" in out
    assert not Region.objects.exists()


def test_parents_link_whatever_the_row_order(tmp_path):
    """Children may come before their parents in the file."""
    path = write_csv(tmp_path, list(reversed(BRANCH)))
    report = run_import(DivisionsImporter(), path, commit=True)
    assert report.counts["created"] == 4 and not report.rejections
    community = Region.objects.get(code="620102001001")
    assert [community.parent.code, community.parent.parent.code, community.parent.parent.parent.code] == [
        "620102001000",
        "620102000000",
        "620100000000",
    ]
    assert community.parent.parent.parent.parent is None


def test_reimport_renames_and_moves(tmp_path):
    """A second file updates names and parents by code; parents may come from the database."""
    run_import(DivisionsImporter(), write_csv(tmp_path, BRANCH), commit=True)
    path = write_csv(
        tmp_path,
        [
            "620102002000,张掖路街道,street,620102000000,620102,620102002",
            "620102001001,中山林社区（新）,community,620102002000,620102,620102002",
        ],
        name="second.csv",
    )
    report = run_import(DivisionsImporter(), path, commit=True)
    assert report.counts == {"rows": 2, "created": 1, "updated": 1, "unchanged": 0, "rejected": 0}
    community = Region.objects.get(code="620102001001")
    assert (community.name, community.parent.code) == ("中山林社区（新）", "620102002000")


def test_gbk_csv_is_decoded(tmp_path):
    path = write_csv(tmp_path, BRANCH, name="gbk.csv", encoding="gbk")
    call_command("import_divisions", str(path), "--commit", verbosity=0)
    assert list(Region.objects.values_list("name", flat=True)) == ["兰州市", "城关区", "酒泉路街道", "中山林社区"]


def test_explicit_encoding(tmp_path):
    """Big5 bytes happen to be valid GB18030, so only --encoding reads them right."""
    lines = [
        "620100000000,蘭州市,city,620000000000,,",
        "620102000000,城關區,district,620100000000,620102,",
        "620102001000,酒泉路街道,street,620102000000,620102,620102001",
        "620102001001,中山林社區,community,620102001000,620102,620102001",
    ]
    path = write_csv(tmp_path, lines, name="big5.csv", encoding="big5")
    call_command("import_divisions", str(path), "--commit", "--encoding", "big5", verbosity=0)
    assert Region.objects.get(code="620102000000").name == "城關區"


def test_xlsx(tmp_path):
    path = tmp_path / "divisions.xlsx"
    rows = [line.split(",") for line in BRANCH]
    pd.DataFrame(rows, columns=HEADER.split(",")).to_excel(path, index=False)
    report = run_import(DivisionsImporter(), path, commit=True)
    assert report.counts["created"] == 4 and not report.rejections
    assert Region.objects.get(code="620102001001").parent.code == "620102001000"


#: (rows after BRANCH, expected rejections as (row, field, value, reason)); BRANCH is rows 2-5.
BAD_ROWS = {
    "code too short": (
        ["62010200200,张掖路街道,street,620102000000,,"],
        [(6, "code", "62010200200", "code must be exactly 12 digits")],
    ),
    "code not digits": (
        ["62010200200X,张掖路街道,street,620102000000,,"],
        [(6, "code", "62010200200X", "code must be exactly 12 digits")],
    ),
    "duplicate code": (
        ["620102001000,酒泉路,street,620102000000,,", "620102001000,酒泉路街道,street,620102000000,,"],
        [
            (6, "code", "620102001000", "duplicate code, first seen on row 4"),
            (7, "code", "620102001000", "duplicate code, first seen on row 4"),
        ],
    ),
    "unknown level": (
        ["620102002000,张掖路街道,town,620102000000,,"],
        [(6, "level", "town", "level must be one of city, district, street, community")],
    ),
    "street level on a community code": (
        ["620102001002,某社区,street,620102001000,,"],
        [
            (
                6,
                "level",
                "street",
                "does not match code 620102001002: a street code is 9 digits + 000, digits 7-9 not 000; "
                "this one is a community code",
            )
        ],
    ),
    "community level on a street code": (
        ["620102002000,张掖路街道,community,620102001000,,"],
        [
            (
                6,
                "level",
                "community",
                "does not match code 620102002000: a community code is 12 digits, the last 3 not 000 and "
                "digits 7-9 not 000; this one is a street code",
            )
        ],
    ),
    "district code with a street part": (
        ["620102000001,某社区,community,620102001000,,"],
        [
            (
                6,
                "level",
                "community",
                "does not match code 620102000001: a community code is 12 digits, the last 3 not 000 and "
                "digits 7-9 not 000; this one is no valid code of any level",
            )
        ],
    ),
    "city level on a district code": (
        ["620103000000,七里河区,city,620000000000,,"],
        [
            (
                6,
                "level",
                "city",
                "does not match code 620103000000: a city code is 4 digits + 00000000; this one is a district code",
            )
        ],
    ),
    "empty name": (
        ["620102002001,,community,620102001000,,"],
        [(6, "name", "", "name is empty")],
    ),
    "parent missing everywhere": (
        ["620102003001,雁南社区,community,620102003000,,"],
        [(6, "parent_code", "620102003000", "parent 620102003000 is neither in the file nor in the database")],
    ),
    "parent code empty": (
        ["620102002000,张掖路街道,street,,,"],
        [(6, "parent_code", "", "parent_code is empty")],
    ),
    "parent of the wrong level": (
        ["620102001002,某社区,community,620102000000,,"],
        [(6, "parent_code", "620102000000", "parent 620102000000 is a district; a community belongs to a street")],
    ),
    "rejected parent takes its subtree": (
        [
            "620102002000,,street,620102000000,,",
            "620102002001,张掖路社区,community,620102002000,,",
            "620102002002,甘南路社区,community,620102002000,,",
        ],
        [
            (6, "name", "", "name is empty"),
            (7, "parent_code", "620102002000", "parent 620102002000 was rejected"),
            (8, "parent_code", "620102002000", "parent 620102002000 was rejected"),
        ],
    ),
    "rejection cascades down two levels": (
        [
            "620103000000,七里河区,district,620100000001,,",
            "620103001000,西园街道,street,620103000000,,",
            "620103001001,西园社区,community,620103001000,,",
        ],
        [
            (6, "parent_code", "620100000001", "parent 620100000001 is neither in the file nor in the database"),
            (7, "parent_code", "620103000000", "parent 620103000000 was rejected"),
            (8, "parent_code", "620103001000", "parent 620103001000 was rejected"),
        ],
    ),
}


@pytest.mark.parametrize("lines, expected", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_bad_rows_are_rejected_with_their_reason(tmp_path, lines, expected):
    """Each bad row is reported once, with file row, field, value and reason; the good rows go in."""
    report = run_import(DivisionsImporter(), write_csv(tmp_path, BRANCH + lines), commit=True)
    assert [(r.row, r.field, r.value, r.reason) for r in report.rejections] == expected
    assert Region.objects.count() == 4 + len(lines) - len(expected)


def test_rejections_go_to_the_report_csv(tmp_path):
    path = write_csv(tmp_path, BRANCH + ["620102003001,雁南社区,community,620102003000,,"])
    report_path = tmp_path / "rejected.csv"
    call_command("import_divisions", str(path), "--report", str(report_path), "--max-rejected", "1", verbosity=0)
    assert report_path.read_text(encoding="utf-8-sig").splitlines() == [
        "row,field,value,reason",
        "6,parent_code,620102003000,parent 620102003000 is neither in the file nor in the database",
    ]


def test_strict_stops_at_the_first_bad_row_and_writes_nothing(tmp_path):
    path = write_csv(
        tmp_path,
        BRANCH + ["620102002000,,street,620102000000,,", "62010200200,张掖路街道,street,620102000000,,"],
    )
    with pytest.raises(CommandError) as error:
        call_command("import_divisions", str(path), "--commit", "--strict", verbosity=0)
    assert str(error.value) == ("divisions.csv: row 6, field name = '': name is empty (--strict: nothing was written)")
    assert not Region.objects.exists()


#: (file name, bytes, extra options, exact CommandError message)
BAD_FILES = {
    "utf-16": (
        "u16.csv",
        "\n".join([HEADER, *BRANCH]).encode("utf-16"),
        [],
        "u16.csv: the file is UTF-16; re-save it as UTF-8 or GBK; nothing was written",
    ),
    "bytes valid in neither UTF-8 nor GB18030": (
        "bad.csv",
        (HEADER + "\n").encode() + b"620100000000,\x81\x20,city,620000000000,,\n",
        [],
        "bad.csv: line 2: bytes are not valid utf-8-sig or gb18030; re-save the file as UTF-8 or GBK or pass "
        "--encoding; nothing was written",
    ),
    "GBK read as UTF-8 on request": (
        "gbk.csv",
        "\n".join([HEADER, *BRANCH]).encode("gbk"),
        ["--encoding", "utf-8"],
        "gbk.csv: line 2: bytes are not valid utf-8; re-save the file as UTF-8 or GBK or pass --encoding; "
        "nothing was written",
    ),
    "missing column": (
        "cols.csv",
        b"code,name,level\n620100000000,x,city\n",
        [],
        "cols.csv: missing column(s) parent_code; the header has code, name, level; nothing was written",
    ),
    "empty file": ("empty.csv", b"", [], "empty.csv: the file is empty; nothing was written"),
    "header only": (
        "header.csv",
        (HEADER + "\n").encode(),
        [],
        "header.csv: the file has a header but no data rows; nothing was written",
    ),
    "not a table": (
        "divisions.json",
        b"{}",
        [],
        "divisions.json: unsupported table format .json; expected .csv or .xlsx; nothing was written",
    ),
    "unknown encoding": (
        "ok.csv",
        "\n".join([HEADER, *BRANCH]).encode(),
        ["--encoding", "klingon"],
        "--encoding: unknown encoding 'klingon'",
    ),
}


@pytest.mark.parametrize("name, content, options, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_unusable_files_fail_with_an_exact_message(tmp_path, name, content, options, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CommandError) as error:
        call_command("import_divisions", str(path), "--commit", *options, verbosity=0)
    assert str(error.value) == message
    assert not Region.objects.exists()


def test_missing_file(tmp_path):
    with pytest.raises(CommandError) as error:
        call_command("import_divisions", str(tmp_path / "nowhere.csv"), verbosity=0)
    assert str(error.value) == "nowhere.csv: no such file; nothing was written"
