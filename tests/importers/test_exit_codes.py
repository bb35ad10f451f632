"""The import commands exit non-zero when an import did not (or, dry, would not) commit: 1 for a
file or option that cannot be used, 3 for more rejected rows than --max-rejected accepts (none
by default), 4 for a grid import that would break the topology; nothing is written then. And
they print one line per stage to a log, bars only to a terminal."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from layers.models import Address, Grid, Person
from tests.worlds import grid_layout
from tests.worlds.factories import grid_tree, region_chain
from tests.worlds.registry_tables import ADDRESS_HEADER, ID_F, ID_M, PERSON_HEADER, address_row, write_csv, write_xlsx

GOOD = [address_row(f"B{i}") for i in range(3)]
BAD = address_row("A9", ("abc", "36.06"))
REJECTED_HINT = "fix the rows listed in the report, or accept them with --max-rejected N (rows) or N%"


def addresses_csv(folder: Path, rows: list[list[str]]) -> Path:
    return write_csv(folder / "addresses.csv", ADDRESS_HEADER, rows)


def addresses_xlsx(folder: Path, rows: list[list[str]]) -> Path:
    return write_xlsx(folder / "addresses.xlsx", ADDRESS_HEADER, rows)


def persons_csv(folder: Path) -> Path:
    """Two persons, the second at an address the database does not hold (refused at the write)."""
    rows = [["张三", ID_F, "户籍", "", "", "A0"], ["李四", ID_M, "户籍", "", "", "NO-SUCH-ADDRESS"]]
    return write_csv(folder / "persons.csv", PERSON_HEADER, rows)


def divisions_without_level(folder: Path) -> Path:
    return write_csv(folder / "divisions.csv", ["code", "name", "parent_code"], [["620100000000", "兰州市", ""]])


#: case → (command, file, options, exit status, message (None: success), rows stored afterwards)
CASES = {
    "every row rejected, commit": (
        "import_addresses", lambda f: addresses_csv(f, [BAD, address_row("", ("103.8", "36.06"))]), ["--commit"],
        3, "addresses.csv: 2 of 2 rows rejected, more than the 0 rows accepted; nothing was written; " + REJECTED_HINT,
        {"addresses": 0},
    ),
    "a row rejected, dry run": (
        "import_addresses", lambda f: addresses_csv(f, [*GOOD, BAD]), [],
        3, "addresses.csv: 1 of 4 rows rejected, more than the 0 rows accepted; a commit would write nothing; "
        + REJECTED_HINT,
        {"addresses": 0},
    ),
    "a row rejected, one accepted": (
        "import_addresses", lambda f: addresses_csv(f, [*GOOD, BAD]), ["--commit", "--max-rejected", "1"],
        0, None, {"addresses": 3},
    ),
    "a quarter rejected, 25% accepted (XLSX)": (
        "import_addresses", lambda f: addresses_xlsx(f, [*GOOD, BAD]), ["--commit", "--max-rejected", "25%"],
        0, None, {"addresses": 3},
    ),
    "a quarter rejected, 20% accepted (XLSX)": (
        "import_addresses", lambda f: addresses_xlsx(f, [*GOOD, BAD]), ["--commit", "--max-rejected", "20%"],
        3, "addresses.xlsx: 1 of 4 rows rejected, more than the 20% of the rows accepted; nothing was written; "
        + REJECTED_HINT,
        {"addresses": 0},
    ),
    "a row refused by the database": (
        "import_persons", persons_csv, ["--commit"],
        3, "persons.csv: 1 of 2 rows rejected, more than the 0 rows accepted; nothing was written; " + REJECTED_HINT,
        {"persons": 0},
    ),
    "a file without a needed column": (
        "import_divisions", divisions_without_level, ["--commit"],
        1, "divisions.csv: missing column(s) level; the header has code, name, parent_code; nothing was written",
        {},
    ),
}  # fmt: skip


@pytest.fixture
def registry_world(db, settings, tmp_path):
    settings.MINQING_REPORT_DIR = tmp_path / "reports"
    grid_tree(region_chain()["community"])
    Address.objects.create(code="A0", full_text="A0", location="SRID=4326;POINT(103.8325 36.065)")


def stored() -> dict[str, int]:
    return {"addresses": Address.objects.exclude(code="A0").count(), "persons": Person.objects.count()}


@pytest.mark.parametrize(("command", "write", "options", "status", "message", "after"), CASES.values(), ids=CASES)
def test_exit_status_and_message_by_outcome(registry_world, tmp_path, command, write, options, status, message, after):
    path = write(tmp_path)
    out = io.StringIO()
    if status:
        with pytest.raises(CommandError) as failed:
            call_command(command, str(path), *options, stdout=out, verbosity=0)
        assert (failed.value.returncode, str(failed.value)) == (status, message)
    else:
        call_command(command, str(path), *options, stdout=out, verbosity=0)
        assert out.getvalue().startswith(f"{path.name}: committed: ")
    assert {name: stored()[name] for name in after} == after


def test_a_grid_import_that_leaves_a_gap_exits_4_and_accepting_it_exits_0(db, tmp_path):
    grid_layout.regions()
    grid_layout.load(grid_layout.layout(), "2024-01-01")
    rows = grid_layout.layout()
    by_code = grid_layout.by_code(rows)
    small = grid_layout.COMMUNITY + "010101"
    by_code[small]["geometry"] = grid_layout.box(0, 0, 200, 500)
    path = grid_layout.write_geojson(tmp_path / "grids.geojson", rows)
    with pytest.raises(CommandError) as failed:
        call_command("import_grids", str(path), "--commit", "--valid-from", "2024-07-01", stdout=io.StringIO())
    assert failed.value.returncode == 4
    assert Grid.objects.get(code=small).boundary.extent == box_extent(grid_layout.box(0, 0, 250, 500))
    call_command(
        "import_grids", str(path), "--commit", "--accept-topology", "--valid-from", "2024-07-01", stdout=io.StringIO()
    )
    assert Grid.objects.get(code=small).boundary.extent == box_extent(grid_layout.box(0, 0, 200, 500))


def box_extent(polygon) -> tuple[float, ...]:
    return pytest.approx(polygon.bounds, abs=1e-9)


# --- the real process ---------------------------------------------------------------------------


def manage(*arguments: str) -> subprocess.CompletedProcess:
    """Run manage.py in a child process on the test database, as a cron job or a script would."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings.test",
        "MINQING_PG_DATABASE": connection.settings_dict["NAME"],
    }
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *arguments],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_the_process_exit_status_is_what_scripts_see(tmp_path):
    """0 committed, 1 unusable file, 2 a malformed option (argparse), 3 rows over the limit."""
    grid_tree(region_chain()["community"])
    report = ["--report", str(tmp_path / "r.csv")]
    ok = manage("import_addresses", str(addresses_csv(tmp_path, GOOD)), "--commit", *report)
    assert (ok.returncode, ok.stdout.splitlines()[0]) == (
        0,
        "addresses.csv: committed: rows 3, created 3, updated 0, outside_grids 0, rejected 0",
    )
    # One line per stage on the non-terminal stderr, never a carriage return.
    stages = ok.stderr.splitlines()
    assert [re.sub(r"[\d.]+ s$", "… s", line) for line in stages] == [
        "addresses.csv: read: 3 rows in … s",
        "addresses.csv: check: 3 rows in … s",
        "addresses.csv: write addresses: 3 rows in … s",
    ]
    assert "\r" not in ok.stderr
    unusable = manage("import_divisions", str(divisions_without_level(tmp_path)))
    assert (unusable.returncode, unusable.stderr.strip().splitlines()[-1]) == (
        1,
        "CommandError: divisions.csv: missing column(s) level; the header has code, name, parent_code; "
        "nothing was written",
    )
    malformed = manage("import_addresses", str(tmp_path / "addresses.csv"), "--max-rejected", "some")
    assert malformed.returncode == 2
    assert malformed.stderr.strip().splitlines()[-1] == (
        "manage.py import_addresses: error: argument --max-rejected: expected a number of rows (such as 25) or a "
        "percentage of the rows read (such as 2.5%), got 'some'"
    )
    rejected = manage("import_addresses", str(addresses_csv(tmp_path, [*GOOD, BAD])), "--commit", *report)
    assert rejected.returncode == 3
    assert Address.objects.count() == 3


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "bars"), [(io.StringIO(), False), (Terminal(), True)], ids=["log", "terminal"])
def test_progress_is_one_line_per_stage_in_a_log_and_bars_on_a_terminal(registry_world, tmp_path, stream, bars):
    call_command(
        "import_addresses", str(addresses_csv(tmp_path, GOOD)), "--commit", stdout=io.StringIO(), stderr=stream
    )
    written = stream.getvalue()
    assert ("\r" in written) is bars
    if not bars:
        assert [line.split(":")[1].strip() for line in written.splitlines()] == ["read", "check", "write addresses"]
