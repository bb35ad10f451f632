"""The monthly situation report (研判报告) on the tiny demo city's year of events: its figures
agree with SQL written here independently, the PDF opens and holds the headline figures, the
HTML needs no network, the scheduled command writes each report once, and bad parameters get
exact 400s (API and page)."""

from __future__ import annotations

import datetime as dt
import io
import re
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone, translation
from pypdf import PdfReader

from layers.models import JudgementReport, ReaderScope, Region
from layers.protection.scope import CITY
from layers.selectors.judgement import report_area_get
from layers.services.judgement import judgement_report_build
from layers.taxonomy import taxonomy_seed
from tests import worlds

pytestmark = pytest.mark.django_db

END = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
MONTH = dt.date(2025, 4, 1)
SHANGHAI = ZoneInfo("Asia/Shanghai")
CITY_CODE, DISTRICT_CODE = "620100000000", "620102000000"


@pytest.fixture
def demo_year():
    return worlds.demo_year(events_seed=3, end=END)


def sql(statement: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.fetchall()


def month_bounds(first: dt.date) -> tuple[dt.datetime, dt.datetime]:
    following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (
        dt.datetime.combine(first, dt.time(), tzinfo=SHANGHAI),
        dt.datetime.combine(following, dt.time(), tzinfo=SHANGHAI),
    )


def test_figures_agree_with_sql(demo_year):
    """Every table of the city's report for April 2025 equals an independent SQL count."""
    report = judgement_report_build(area=report_area_get(code=CITY_CODE, reader_scope=CITY), month=MONTH, now=END)
    f = report.figures
    start, stop = month_bounds(MONTH)
    before = month_bounds(dt.date(2025, 3, 1))[0]
    window = "received_at >= %s AND received_at < %s"
    ((cases, done, overdue, escalated, rated, mean),) = sql(
        f"""SELECT count(*), count(*) FILTER (WHERE status IN ('resolved', 'verified', 'closed')),
                   count(*) FILTER (WHERE deadline IS NOT NULL AND coalesce(resolved_at, %s) > deadline),
                   count(*) FILTER (WHERE escalation_level > 0), count(satisfaction), avg(satisfaction)
            FROM layers_event WHERE {window}""",
        [END, start, stop],
    )
    month = f["headline"]["month"]
    assert cases > 100
    assert (month["cases"], month["completed"], month["overdue"], month["escalated"], month["rated"]) == (
        cases,
        done,
        overdue,
        escalated,
        rated,
    )
    assert month["satisfaction_mean"] == round(float(mean), 2)
    ((previous,),) = sql(f"SELECT count(*) FROM layers_event WHERE {window}", [before, start])
    assert f["headline"]["previous"]["cases"] == previous
    # The demo year starts in June 2024: April 2024 is empty.
    assert f["headline"]["last_year"]["cases"] == 0
    # Six data classes; grid and drone patrols are one.
    channels = dict(
        sql(
            f"""SELECT CASE WHEN channel LIKE '%%patrol' THEN 'patrol' ELSE channel END, count(*)
                FROM layers_event WHERE {window} GROUP BY 1""",
            [start, stop],
        )
    )
    assert {c["channel"]: c["cases"] for c in f["channels"] if c["cases"]} == channels
    assert [c["channel"] for c in f["channels"]] == ["hotline", "app", "web", "mediation", "petition", "patrol"]
    categories = dict(
        sql(
            f"""SELECT c.code, count(*) FROM layers_event e JOIN layers_category c ON c.id = e.category_id
                WHERE e.{window.replace("received_at", "e.received_at", 1)} GROUP BY 1""".replace("e.e.", "e."),
            [start, stop],
        )
    )
    assert {c["code"]: c["cases"] for c in f["categories"] if c["cases"]} == categories
    # The streets that rose most: this month minus last, per street, largest first.
    rises = sql(
        """SELECT r.name, count(*) FILTER (WHERE e.received_at >= %s) - count(*) FILTER (WHERE e.received_at < %s)
           FROM layers_event e JOIN layers_region r ON r.id = e.street_id
           WHERE e.received_at >= %s AND e.received_at < %s GROUP BY r.name HAVING
           count(*) FILTER (WHERE e.received_at >= %s) > count(*) FILTER (WHERE e.received_at < %s)
           ORDER BY 2 DESC, r.name""",
        [start, start, before, stop, start, start],
    )
    assert sorted((p["name"], p["change"]) for p in f["rising_parts"]) == sorted(rises[:5])
    # Recurring addresses: two or more cases at one standard address in the month.
    ((top,),) = sql(
        f"""SELECT max(n) FROM (SELECT count(*) AS n FROM layers_event e LEFT JOIN layers_address a
            ON a.id = e.matched_address_id WHERE e.{window} GROUP BY coalesce(a.full_text, e.address_text)) x""",
        [start, stop],
    )
    if top >= 2:
        assert f["addresses"][0]["cases"] == top
    # Satisfaction distribution sums to the rated cases.
    assert sum(d["cases"] for d in f["satisfaction"]["distribution"]) == rated
    # The district is the whole tiny city; a street only its own cases.
    district = judgement_report_build(area=report_area_get(code=DISTRICT_CODE, reader_scope=CITY), month=MONTH, now=END)
    assert district.figures["headline"]["month"]["cases"] == cases
    street = Region.objects.filter(level="street").order_by("code").first()
    ((street_cases,),) = sql(
        f"SELECT count(*) FROM layers_event WHERE street_id = %s AND {window}", [street.id, start, stop]
    )
    street_report = judgement_report_build(
        area=report_area_get(code=street.code, reader_scope=CITY), month=MONTH, now=END
    )
    assert street_report.figures["headline"]["month"]["cases"] == street_cases
    assert street_report.figures["parts_level"] == "community"


def test_pdf_opens_and_holds_the_headline_figures(demo_year):
    """The Chinese PDF is a real PDF whose text holds the area, the month and the headline
    figures; the HTML has its maps and charts inline and loads nothing from the network."""
    area = report_area_get(code=DISTRICT_CODE, reader_scope=CITY)
    with translation.override("zh-hans"):
        report = judgement_report_build(area=area, month=MONTH, now=END)
        pdf = report.pdf()
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    month = report.figures["headline"]["month"]
    assert "城关区" in text and "2025-04" in text
    assert "研判报告" in text
    assert f"{month['cases']:,}" in text
    assert f"{month['completion_rate'] * 100:.1f}%" in text
    assert f"{month['satisfaction_mean']:g}" in text
    # Every label in Chinese: the only Latin words are the statistic's authors' names and UTC.
    assert set(re.findall(r"[A-Za-z]{3,}", text)) <= {"Getis", "Ord", "UTC"}, re.findall(r"[A-Za-z ,()]{8,}", text)
    html = report.html
    assert html.count('src="data:image/png;base64,') == 8
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html and "<link" not in html


def test_the_command_writes_each_report_once(demo_year, tmp_path, settings):
    settings.MINQING_REPORT_DIR = tmp_path
    now = "2025-06-01T08:00:00+08:00"
    errors = io.StringIO()
    call_command("generate_judgement_reports", "--month", "2025-04", "--now", now, stdout=io.StringIO(), stderr=errors)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "620100000000-2025-04.html",
        "620100000000-2025-04.pdf",
        "620102000000-2025-04.html",
        "620102000000-2025-04.pdf",
    ]
    assert "2 report(s) written, 0 skipped" in errors.getvalue()
    first = (tmp_path / "620102000000-2025-04.pdf").stat().st_mtime_ns
    errors = io.StringIO()
    call_command("generate_judgement_reports", "--month", "2025-04", "--now", now, stdout=io.StringIO(), stderr=errors)
    assert "0 report(s) written, 2 skipped" in errors.getvalue()
    assert (tmp_path / "620102000000-2025-04.pdf").stat().st_mtime_ns == first
    row = JudgementReport.objects.get(area_code=DISTRICT_CODE, month=MONTH)
    assert row.figures["headline"]["month"]["cases"] > 0 and row.pdf_path.endswith("620102000000-2025-04.pdf")
    # Without --month: the last whole month before --now.
    call_command(
        "generate_judgement_reports", "--area", DISTRICT_CODE, "--now", now, stdout=io.StringIO(), stderr=io.StringIO()
    )
    assert (tmp_path / "620102000000-2025-05.pdf").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--month", "2025-4x"], "--month '2025-4x': expected a month as YYYY-MM"),
        (["--month", "2025-07"], "month: 2025-07 has not begun (today is 2025-06-01)"),
        (
            ["--area", "620102001001"],
            "area: 620102001001 is a community; reports cover the city, a district or a street",
        ),
        (["--area", "6201"], "area: expected a 12-digit code of the city, a district or a street, got '6201'"),
    ],
)
def test_the_command_refuses_bad_options(options, message):
    taxonomy_seed()
    from tests.worlds.factories import region_chain

    region_chain()
    with pytest.raises(CommandError) as refused:
        call_command("generate_judgement_reports", *options, "--now", "2025-06-01T08:00:00+08:00")
    assert str(refused.value) == message


# --- the HTTP edge ------------------------------------------------------------------------------


@pytest.fixture
def regions():
    from tests.worlds.factories import region_chain

    taxonomy_seed()
    chain = region_chain()
    Region.objects.create(code="620103000000", name="七里河区", level="district", parent=chain["city"])
    return chain


def signed_in(client, django_user_model, name: str, role: str):
    user = django_user_model.objects.create_user(name)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client.force_login(user)
    return user


def today_text() -> str:
    return timezone.localdate().isoformat()


def next_month() -> str:
    today = timezone.localdate()
    return f"{today.year + today.month // 12}-{today.month % 12 + 1:02d}"


BAD_PARAMETERS = [
    ({"area": "abc"}, "area: expected a 12-digit code of the city, a district or a street, got 'abc'"),
    ({"area": "620199000000"}, "area: unknown area '620199000000'"),
    ({"area": "620102001001"}, "area: 620102001001 is a community; reports cover the city, a district or a street"),
    ({"month": "2025-13"}, "month: must be a month as YYYY-MM, got '2025-13'"),
    ({"month": "May 2025"}, "month: must be a month as YYYY-MM, got 'May 2025'"),
    ({"month": "future"}, "month: {next} has not begun (today is {today})"),
    ({"output": "docx"}, "output: must be one of json, html, pdf, got 'docx'"),
    ({"areas": "620100000000"}, "areas: is not a parameter here; known: area, month, output"),
]


@pytest.mark.parametrize("query, message", BAD_PARAMETERS)
def test_bad_parameters_are_exact_400s(regions, client, django_user_model, query, message):
    signed_in(client, django_user_model, "analyst1", "analyst")
    query = {k: (next_month() if v == "future" else v) for k, v in query.items()}
    response = client.get("/api/judgement/report", query)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message.format(next=next_month(), today=today_text())


def test_the_reader_reports_only_inside_their_scope(regions, client, django_user_model):
    leader = signed_in(client, django_user_model, "leader1", "leader")
    scope = ReaderScope.objects.create(user=leader, level=ReaderScope.Level.DISTRICT)
    scope.regions.add(Region.objects.get(code="620103000000"))
    response = client.get("/api/judgement/report", {"area": DISTRICT_CODE, "month": "2025-04"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "area: 620102000000 lies outside your data scope"
    # Their own district answers (no events: zeros, not an error).
    response = client.get("/api/judgement/report", {"area": "620103000000", "month": "2025-04"})
    assert response.status_code == 200
    assert response.json()["headline"]["month"]["cases"] == 0


def test_only_analysts_and_leaders_read_reports(regions, client, django_user_model):
    signed_in(client, django_user_model, "worker1", "grid_worker")
    assert client.get("/api/judgement/report", {"month": "2025-04"}).status_code == 403
    assert client.get("/judgement/").status_code == 403


def test_the_page_shows_the_report_and_says_what_is_wrong(regions, client, django_user_model):
    signed_in(client, django_user_model, "analyst2", "analyst")
    page = client.get("/judgement/", {"area": DISTRICT_CODE, "month": "2025-04"})
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="headline"' in body and "output=pdf" in body
    bad = client.get("/judgement/", {"area": DISTRICT_CODE, "month": "2025-13"})
    assert bad.status_code == 400
    assert "month: must be a month as YYYY-MM, got &#x27;2025-13&#x27;" in bad.content.decode()
    pdf = client.get("/api/judgement/report", {"area": DISTRICT_CODE, "month": "2025-04", "output": "pdf"})
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert PdfReader(io.BytesIO(pdf.content)).pages
