"""The monthly situation report made: figures, maps, the HTML document and its PDF, and the
files the scheduled command writes.

:func:`judgement_report_build` draws one report on demand (the page and the API);
:func:`judgement_report_publish` writes its PDF and HTML under ``MINQING_REPORT_DIR`` and keeps
a :class:`~layers.models.JudgementReport` row, once per (area, month): a timer may run the
command every day and a report already written is left as it is (``force`` writes it again).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation

from layers.publishing.reporting import report_context, report_html, report_pdf

from ..models import JudgementReport
from ..selectors.judgement import ReportArea, judgement_figures, judgement_map_data


@dataclass(frozen=True)
class Report:
    """A report made: its figures, the templates' context (charts and maps drawn) and the
    standalone HTML document."""

    figures: dict
    context: dict
    html: str

    def pdf(self) -> bytes:
        return report_pdf(self.html)


def judgement_report_build(*, area: ReportArea, month: dt.date, now: dt.datetime | None = None) -> Report:
    """The report of ``area`` for ``month`` in the active language."""
    now = now or timezone.now()
    figures = judgement_figures(area=area, month=month, now=now)
    maps = judgement_map_data(area=area, month=month, now=now)
    figures["warnings"] = maps.warnings
    figures["hot_spots"] = {
        family: sorted(code for code, grid_id in zip(maps.grid_codes, maps.grid_ids, strict=True)
                       if classes.get(grid_id, "").startswith("hot"))
        for family, classes in maps.hotspots.items()
    }  # fmt: skip
    context = report_context(figures=figures, maps=maps)
    return Report(figures=figures, context=context, html=report_html(context))


def report_paths(*, area_code: str, month: dt.date, directory: Path | None = None) -> tuple[Path, Path]:
    """Where the PDF and the HTML of a report go."""
    base = Path(directory or settings.MINQING_REPORT_DIR)
    stem = f"{area_code}-{month:%Y-%m}"
    return base / f"{stem}.pdf", base / f"{stem}.html"


def _write(path: Path, data: bytes) -> None:
    # Write beside and rename: a reader never sees half a file, and a crash leaves none.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


def judgement_report_publish(
    *, area: ReportArea, month: dt.date, now: dt.datetime | None = None, directory: Path | None = None,
    force: bool = False, language: str = "zh-hans",
) -> tuple[JudgementReport, bool]:  # fmt: skip
    """Write the report's PDF and HTML and record it; returns the row and whether anything was
    written (``False``: the report of that area and month exists with both files)."""
    pdf_path, html_path = report_paths(area_code=area.code, month=month, directory=directory)
    existing = JudgementReport.objects.filter(area_code=area.code, month=month).first()
    if existing is not None and not force and pdf_path.exists() and html_path.exists():
        return existing, False
    with translation.override(language):
        report = judgement_report_build(area=area, month=month, now=now)
        pdf = report.pdf()
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    _write(html_path, report.html.encode())
    _write(pdf_path, pdf)
    with transaction.atomic():
        row, _ = JudgementReport.objects.update_or_create(
            area_code=area.code,
            month=month,
            defaults={
                "area_name": area.name,
                "generated_at": timezone.now(),
                "figures": report.figures,
                "pdf_path": str(pdf_path),
                "html_path": str(html_path),
            },
        )
    return row, True
