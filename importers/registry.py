"""Importers of the 一标三实 registry: standard addresses, persons and units (CSV or XLSX).

Each reads a table, checks its rows in vectorised passes, and hands the clean frame to the bulk
services of :mod:`layers.services.registry` (COPY → staging → one INSERT … SELECT).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from django.utils import translation
from django.utils.translation import gettext_noop

from layers.geocoding.crs import CLIENT_CRS
from layers.models import Address, Person, Unit
from layers.protection import personal
from layers.protection.checksums import credit_code_problem, id_number_problem
from layers.services import registry as services

from . import preview
from .base import Importer, Option
from .divisions import ENCODING_CHOICES
from .report import ImportReport
from .rowchecks import RowChecks
from .sources import ROW, check_encoding, read_table, require_columns
from .validators import check_coordinates, in_wgs84, max_lengths, rename_aliases, require_values, unique_keys


class TableImporter(Importer):
    """A registry importer reading one table; subclasses name their columns and aliases."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    aliases: dict[str, str] = {}
    formats = preview.TABLE_FORMATS
    options = (
        Option("encoding", gettext_noop("Text encoding of a CSV"), kind="choice", choices=ENCODING_CHOICES),
        Option(
            "crs", gettext_noop("Coordinates of lon/lat"), kind="choice", choices=tuple(CLIENT_CRS), default="wgs84"
        ),
    )

    def __init__(self, *, encoding: str | None = None, crs: str = "wgs84") -> None:
        check_encoding(encoding)
        if crs not in CLIENT_CRS:
            raise ValueError(f"--crs must be one of {', '.join(CLIENT_CRS)}, got {crs!r}")
        self.encoding = encoding
        self.crs = crs

    def read(self, path: Path) -> pd.DataFrame:
        frame = read_table(path, encoding=self.encoding)
        frame = rename_aliases(frame, self.aliases)
        frame = require_columns(path, frame, self.required)
        for column in self.optional:
            if column not in frame.columns:
                frame[column] = ""
        return frame[[*self.required, *self.optional, ROW]]

    def _reject_callback(self, report: ImportReport):
        return lambda row, field, value, reason: report.reject(row, field, value, reason)


class AddressImporter(TableImporter):
    kind = "addresses"
    required = ("code", "lon", "lat")
    optional = (
        "district",
        "street",
        "road",
        "door_number",
        "compound",
        "building",
        "entrance",
        "floor",
        "room",
        "full_text",
        "building_code",
    )
    aliases = {
        "地址编码": "code",
        "经度": "lon",
        "纬度": "lat",
        "区县": "district",
        "街道": "street",
        "道路": "road",
        "门牌号": "door_number",
        "小区": "compound",
        "楼栋": "building",
        "单元": "entrance",
        "楼层": "floor",
        "室": "room",
        "房号": "room",
        "标准地址": "full_text",
        "房屋编码": "building_code",
    }

    def validate(self, frame: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
        checks = RowChecks(frame)
        require_values(checks, "code")
        checks.fail(frame["code"].str.len() > 32, "code", "longer than 32 characters")
        max_lengths(checks, Address, _ADDRESS_PARTS)
        checks.fail((frame["full_text"] == "") & (frame["road"] == ""), "full_text", "full_text or road is required")
        full_text, limit = _full_text(frame), Address._meta.get_field("full_text").max_length
        checks.fail(full_text.str.len() > limit, "full_text", f"longer than {limit} characters", value=full_text)
        unique_keys(checks, "code")
        check_coordinates(checks)
        clean = checks.reject_into(report)
        return in_wgs84(clean.assign(full_text=full_text[clean.index]), self.crs)

    def write(self, frame: pd.DataFrame, report: ImportReport) -> None:
        frame = frame.rename(columns=_ADDRESS_PARTS)
        with self.progress(len(frame), "write addresses") as bar:
            report.counts.update(
                services.addresses_upsert(frame=frame, on_batch=bar.update, on_reject=self._reject_callback(report))
            )

    def preview(self, frame: pd.DataFrame, report: ImportReport) -> list[dict]:
        return preview.point_features(
            frame["lon"].astype(float), frame["lat"].astype(float), {"code": frame["code"]}, role="address"
        )


#: Address parts in their order in a standard address: column → Address field.
_ADDRESS_PARTS = {
    "district": "district_name",
    "street": "street_name",
    "road": "road",
    "door_number": "door_number",
    "compound": "compound_name",
    "building": "building_number",
    "entrance": "entrance",
    "floor": "floor",
    "room": "room",
}


def _full_text(frame: pd.DataFrame) -> pd.Series:
    """The standard address as given, or composed from its parts when the file gives none."""
    missing = frame["full_text"] == ""
    if not missing.any():
        return frame["full_text"]
    parts = [frame.loc[missing, column] for column in _ADDRESS_PARTS]
    return frame["full_text"].mask(missing, parts[0].str.cat(parts[1:]))


_RESIDENCE = {
    "registered": "registered",
    "户籍": "registered",
    "户籍人口": "registered",
    "floating": "floating",
    "流动": "floating",
    "流动人口": "floating",
}


def _chinese_labels(choices) -> dict[str, str]:
    """Chinese name → code of coded values (the names a city's spreadsheet holds), whatever the
    active language: the choices' labels are English msgids translated by the catalog."""
    with translation.override("zh-hans"):
        return {str(label): value for value, label in choices}


_CARE_TAGS = {value: value for value in Person.CareTag.values} | _chinese_labels(Person.CareTag.choices)


class PersonImporter(TableImporter):
    kind = "persons"
    options = (Option("encoding", gettext_noop("Text encoding of a CSV"), kind="choice", choices=ENCODING_CHOICES),)
    masked_fields = {"id_number": personal.mask_id_number, "phone": personal.mask_phone}
    required = ("name", "id_number", "residence")
    optional = ("phone", "care_tags", "address_code", "dwelling_code")
    aliases = {
        "姓名": "name",
        "身份证号": "id_number",
        "公民身份号码": "id_number",
        "联系电话": "phone",
        "户籍类型": "residence",
        "关爱标签": "care_tags",
        "地址编码": "address_code",
        "户室编码": "dwelling_code",
    }

    def validate(self, frame: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
        frame = frame.assign(
            id_number=frame["id_number"].str.upper(),
            phone=frame["phone"].str.replace(r"[-\s]", "", regex=True),
        )
        checks = RowChecks(frame)
        require_values(checks, "name", "id_number")
        max_lengths(checks, Person, {"name": "name"})
        checks.fail_by("id_number", id_number_problem)
        unique_keys(checks, "id_number")
        residence = frame["residence"].map(_RESIDENCE)
        checks.fail(residence.isna(), "residence", "must be registered/户籍 or floating/流动")
        checks.fail_by("care_tags", _care_tags_problem)
        checks.fail(
            (frame["phone"] != "") & ~frame["phone"].str.fullmatch(r"\+?\d{7,13}"), "phone", "not a phone number"
        )
        unplaced = (frame["address_code"] == "") & (frame["dwelling_code"] == "")
        checks.fail(unplaced, "address_code", "address_code or dwelling_code is required")
        clean = checks.reject_into(report)
        return clean.assign(residence=residence[clean.index], care_tags=clean["care_tags"].map(_normalise_care_tags))

    def write(self, frame: pd.DataFrame, report: ImportReport) -> None:
        with self.progress(len(frame), "write persons") as bar:
            report.counts.update(
                services.persons_upsert(frame=frame, on_batch=bar.update, on_reject=self._reject_callback(report))
            )


def _split_tags(value: str) -> list[str]:
    return [
        tag.strip() for tag in value.replace("；", ";").replace(",", ";").replace("，", ";").split(";") if tag.strip()
    ]


def _care_tags_problem(value: str) -> str | None:
    unknown = [tag for tag in _split_tags(value) if tag not in _CARE_TAGS]
    if unknown:
        return f"unknown care tag {unknown[0]!r}; known: {', '.join(Person.CareTag.values)}"
    return None


def _normalise_care_tags(value: str) -> str:
    return ";".join(dict.fromkeys(_CARE_TAGS[tag] for tag in _split_tags(value)))


_UNIT_KINDS = {value: value for value in Unit.Kind.values} | _chinese_labels(Unit.Kind.choices)


class UnitImporter(TableImporter):
    kind = "units"
    required = ("credit_code", "name")
    optional = ("kind", "address_code", "address_text", "lon", "lat")
    aliases = {
        "统一社会信用代码": "credit_code",
        "单位名称": "name",
        "名称": "name",
        "单位类型": "kind",
        "地址编码": "address_code",
        "地址": "address_text",
        "经度": "lon",
        "纬度": "lat",
    }

    def validate(self, frame: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
        frame = frame.assign(credit_code=frame["credit_code"].str.upper())
        checks = RowChecks(frame)
        require_values(checks, "credit_code", "name")
        max_lengths(checks, Unit, {"name": "name", "address_text": "address_text"})
        checks.fail_by("credit_code", credit_code_problem)
        unique_keys(checks, "credit_code")
        kind = frame["kind"].replace("", "enterprise").map(_UNIT_KINDS)
        checks.fail(kind.isna(), "kind", f"must be one of {', '.join(Unit.Kind.values)}")
        nowhere = (frame["lon"] == "") & (frame["lat"] == "") & (frame["address_code"] == "")
        checks.fail(nowhere, "lon", "lon/lat or address_code is required")
        check_coordinates(checks, optional=True)
        clean = checks.reject_into(report)
        return in_wgs84(clean.assign(kind=kind[clean.index]), self.crs)

    def write(self, frame: pd.DataFrame, report: ImportReport) -> None:
        with self.progress(len(frame), "write units") as bar:
            report.counts.update(
                services.units_upsert(frame=frame, on_batch=bar.update, on_reject=self._reject_callback(report))
            )

    def preview(self, frame: pd.DataFrame, report: ImportReport) -> list[dict]:
        located = frame["lon"].astype(float).notna()
        return preview.point_features(
            frame.loc[located, "lon"].astype(float),
            frame.loc[located, "lat"].astype(float),
            {"credit_code": frame.loc[located, "credit_code"], "name": frame.loc[located, "name"]},
            role="unit",
        )
