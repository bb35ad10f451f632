"""Bulk writes of the 一标三实 registry: COPY into staging, then one INSERT … SELECT per table.

Each ``<entity>s_upsert`` takes a frame whose rows were already validated (codes unique within
the frame) and upserts by the entity's stable key: address/building/dwelling/compound code,
the keyed digest of a person's ID number, a unit's credit code. Links to grids and regions are
computed in the same statements (addresses) or right after, for the loaded rows only
(:mod:`layers.services.linking`). Frames hold strings and numbers; geometry arrives as lon/lat
or WKT in WGS84.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import numpy as np
import pandas as pd
from django.db import connection
from psycopg2.extras import execute_values

from layers.geocoding.points import grid_assign_points
from layers.protection import personal
from layers.protection.checksums import id_number_facts

from . import linking
from .bulk import analyze, copy_frame, create_staging, fetch

OnBatch = Callable[[int], None] | None
#: Called with (row, field, value, reason) for each staged row refused by a database-level check.
OnReject = Callable[[int, str, str, str], None] | None

_LINKS = "grid_id, grid_medium_id, grid_large_id, community_id, street_id, district_code"


def _upsert(insert_sql: str, *, unlinked: bool = False) -> dict[str, int]:
    """Run an ``INSERT … ON CONFLICT DO UPDATE`` and count what it did in the same statement.

    A row the statement inserted has ``xmax = 0``; one it updated carries the updating
    transaction's id there. ``unlinked`` also counts rows that landed in no small grid.
    """
    returning = "(xmax = 0) AS created" + (", grid_id" if unlinked else "")
    created, updated, outside = fetch(
        f"""WITH written AS ({insert_sql} RETURNING {returning})
            SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created),
                   {"count(*) FILTER (WHERE grid_id IS NULL)" if unlinked else "0"}
            FROM written"""
    )[0]
    counts = {"created": created, "updated": updated}
    if unlinked:
        counts["outside_grids"] = outside
    return counts


def _drop_unknown(staging: str, column: str, table: str, key: str, on_reject: OnReject, what: str) -> None:
    """Remove staged rows whose ``column`` names a ``table`` row that does not exist, reporting each."""
    refused = fetch(
        f"""DELETE FROM {staging} s WHERE s.{column} <> ''
            AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{key} = s.{column})
            RETURNING s.id, s.{column}"""
    )
    for row, value in sorted(refused):
        if on_reject:
            on_reject(row, column, value, f"no {what} with this code in the database")


def _fresh_statistics(*tables: str) -> None:
    """ANALYZE before linking what was just loaded: with stale counts the planner may drive the
    grid join from the wrong side, which costs minutes instead of a second."""
    for table in tables:
        analyze(table)


def _with_row(frame: pd.DataFrame) -> pd.DataFrame:
    """Staging tables key rows by ``id``: the source row number when known, else the position."""
    frame = frame.copy()
    frame["id"] = frame["_row"].astype(int) if "_row" in frame.columns else np.arange(1, len(frame) + 1)
    return frame


ADDRESS_STAGING = {
    "id": "integer",
    "code": "text",
    "district_name": "text",
    "street_name": "text",
    "road": "text",
    "door_number": "text",
    "compound_name": "text",
    "building_number": "text",
    "entrance": "text",
    "floor": "text",
    "room": "text",
    "full_text": "text",
    "lon": "float8",
    "lat": "float8",
    "building_code": "text",
    "grid_id": "bigint",
}
_ADDRESS_TEXT = [c for c, t in ADDRESS_STAGING.items() if t == "text" and c != "building_code"]


def addresses_upsert(*, frame: pd.DataFrame, on_batch: OnBatch = None, on_reject: OnReject = None) -> dict[str, int]:
    """Upsert standard addresses by code, linking each to its small grid on the way in.

    The small grid of each point is found in process (:func:`grid_assign_points`: a tree on the
    points, each grid polygon prepared once) and loaded with the row, so the INSERT only joins
    the grid chain by id. Same rule as the SQL linking: covered, lowest grid id on a shared edge.
    """
    frame = _with_row(frame)
    if "building_code" not in frame.columns:
        frame["building_code"] = ""
    grid = grid_assign_points(lon=frame["lon"].to_numpy(dtype=float), lat=frame["lat"].to_numpy(dtype=float))
    frame["grid_id"] = pd.Series(grid, index=frame.index, dtype="Int64").mask(grid < 0)
    create_staging("staging_address", ADDRESS_STAGING)
    copy_frame("staging_address", frame, ADDRESS_STAGING, on_batch=on_batch)
    _drop_unknown("staging_address", "building_code", "layers_building", "code", on_reject, "building")
    columns = ", ".join(_ADDRESS_TEXT)
    counts = _upsert(
        f"""
        INSERT INTO layers_address ({columns}, location, building_id, {_LINKS})
        SELECT {", ".join(f"s.{c}" for c in _ADDRESS_TEXT)},
               ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326), b.id,
               c.grid_id, c.grid_medium_id, c.grid_large_id, c.community_id, c.street_id,
               coalesce(c.district_code, '')
        FROM staging_address s
        LEFT JOIN layers_grid_chain c ON c.grid_id = s.grid_id
        LEFT JOIN layers_building b ON b.code = s.building_code AND s.building_code <> ''
        ON CONFLICT (code) DO UPDATE SET
            {", ".join(f"{c} = EXCLUDED.{c}" for c in _ADDRESS_TEXT if c != "code")},
            location = EXCLUDED.location, building_id = EXCLUDED.building_id,
            {", ".join(f"{c} = EXCLUDED.{c}" for c in _LINKS.split(", "))}
        """,
        unlinked=True,
    )
    if counts["updated"]:
        # Persons and dwellings at a moved address follow it.
        where = "t.address_id IN (SELECT a.id FROM layers_address a JOIN staging_address s USING (code))"
        linking.link(linking.DWELLING, where=where)
        linking.link(linking.PERSON, where=where)
    return counts


COMPOUND_STAGING = {"id": "integer", "code": "text", "name": "text", "boundary_wkt": "text"}


def compounds_upsert(*, frame: pd.DataFrame, on_batch: OnBatch = None) -> dict[str, int]:
    """Upsert compounds (小区) by code from WKT polygons; link each to the grid holding it."""
    frame = _with_row(frame)
    create_staging("staging_compound", COMPOUND_STAGING)
    copy_frame("staging_compound", frame, COMPOUND_STAGING, on_batch=on_batch)
    counts = _upsert(
        """
        INSERT INTO layers_compound (code, name, boundary, district_code)
        SELECT code, name, ST_Multi(ST_GeomFromText(boundary_wkt, 4326)), '' FROM staging_compound
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, boundary = EXCLUDED.boundary
        """
    )
    _fresh_statistics("layers_compound", "staging_compound")
    linking.link(linking.COMPOUND, where="t.code IN (SELECT code FROM staging_compound)")
    return counts


BUILDING_STAGING = {
    "id": "integer",
    "code": "text",
    "name": "text",
    "footprint_wkt": "text",
    "floors": "integer",
    "use": "text",
    "compound_code": "text",
}


def buildings_upsert(*, frame: pd.DataFrame, on_batch: OnBatch = None) -> dict[str, int]:
    """Upsert buildings by code from WKT footprints; link each by a point on its footprint."""
    frame = _with_row(frame)
    for column, default in (("compound_code", ""), ("name", ""), ("use", "residential")):
        if column not in frame.columns:
            frame[column] = default
    create_staging("staging_building", BUILDING_STAGING)
    copy_frame("staging_building", frame, BUILDING_STAGING, on_batch=on_batch)
    counts = _upsert(
        """
        INSERT INTO layers_building (code, name, footprint, floors, use, compound_id, district_code)
        SELECT s.code, s.name, ST_GeomFromText(s.footprint_wkt, 4326), s.floors, s.use, c.id, ''
        FROM staging_building s LEFT JOIN layers_compound c ON c.code = s.compound_code AND s.compound_code <> ''
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, footprint = EXCLUDED.footprint,
            floors = EXCLUDED.floors, use = EXCLUDED.use, compound_id = EXCLUDED.compound_id
        """
    )
    _fresh_statistics("layers_building", "staging_building")
    linking.link(linking.BUILDING, where="t.code IN (SELECT code FROM staging_building)")
    return counts


DWELLING_STAGING = {
    "id": "integer",
    "code": "text",
    "building_code": "text",
    "address_code": "text",
    "use": "text",
    "occupancy": "text",
    "area_m2": "float8",
}


def dwellings_upsert(*, frame: pd.DataFrame, on_batch: OnBatch = None) -> dict[str, int]:
    """Upsert dwellings (户室) by code; they take the links of their address."""
    frame = _with_row(frame)
    create_staging("staging_dwelling", DWELLING_STAGING)
    copy_frame("staging_dwelling", frame, DWELLING_STAGING, on_batch=on_batch)
    return _upsert(
        f"""
        INSERT INTO layers_dwelling (code, building_id, address_id, use, occupancy, area_m2, {_LINKS})
        SELECT s.code, b.id, a.id, s.use, s.occupancy, s.area_m2,
               a.grid_id, a.grid_medium_id, a.grid_large_id, a.community_id, a.street_id, coalesce(a.district_code, '')
        FROM staging_dwelling s
        LEFT JOIN layers_building b ON b.code = s.building_code AND s.building_code <> ''
        LEFT JOIN layers_address a ON a.code = s.address_code AND s.address_code <> ''
        ON CONFLICT (code) DO UPDATE SET building_id = EXCLUDED.building_id, address_id = EXCLUDED.address_id,
            use = EXCLUDED.use, occupancy = EXCLUDED.occupancy, area_m2 = EXCLUDED.area_m2,
            {", ".join(f"{c} = EXCLUDED.{c}" for c in _LINKS.split(", "))}
        """
    )


PERSON_STAGING = {
    "id": "integer",
    "name": "text",
    "id_number_digest": "text",
    "id_number_cipher": "text",
    "id_number_masked": "text",
    "phone_digest": "text",
    "phone_cipher": "text",
    "phone_masked": "text",
    "gender": "text",
    "birth_date": "date",
    "residence": "text",
    "care_tags": "text",
    "address_code": "text",
    "dwelling_code": "text",
}


def protect_persons(frame: pd.DataFrame) -> pd.DataFrame:
    """Replace clear ID numbers and phones by ciphertext, keyed digest and masked form; derive
    gender and birth date from the (already validated) ID number."""
    frame = frame.copy()
    ids = frame["id_number"].tolist()
    frame["id_number_digest"] = [personal.digest(value) for value in ids]
    frame["id_number_cipher"] = _encrypt_all(ids)
    frame["id_number_masked"] = [personal.mask_id_number(value) for value in ids]
    facts = [id_number_facts(value) for value in ids]
    frame["birth_date"] = [birth.isoformat() for birth, _ in facts]
    frame["gender"] = [gender for _, gender in facts]
    phones = frame["phone"].tolist() if "phone" in frame.columns else [""] * len(frame)
    has_phone = [bool(value) for value in phones]
    present = [value for value, keep in zip(phones, has_phone, strict=True) if keep]
    ciphers = iter(_encrypt_all(present))
    frame["phone_cipher"] = [next(ciphers) if keep else "" for keep in has_phone]
    frame["phone_digest"] = [personal.digest(v) if v else "" for v in phones]
    frame["phone_masked"] = [personal.mask_phone(v) if v else "" for v in phones]
    return frame.drop(columns=["id_number", "phone"], errors="ignore")


def _encrypt_all(values: list[str]) -> list[str]:
    # One urandom call for all nonces: per-value syscalls would cost more than the encryption.
    nonces = os.urandom(12 * len(values))
    aead = personal.cipher()
    encode = base64.urlsafe_b64encode
    return [
        encode(nonces[12 * i : 12 * i + 12] + aead.encrypt(nonces[12 * i : 12 * i + 12], value.encode(), None)).decode()
        for i, value in enumerate(values)
    ]


def _adopt_previous_digests(ids: list[str]) -> None:
    """While a key rotation is under way, a person not yet rewritten by
    ``rotate_personal_data_key`` holds the digest of their ID number under a previous key: give
    them the current key's digest first, so that the upsert's ``ON CONFLICT (id_number_digest)``
    finds them rather than storing them twice. Their ciphertexts stay as they are (read under the
    previous key until the rotation rewrites them, or the upsert replaces them)."""
    if not ids or not personal.rotating():
        return
    pairs = [(old, found[0]) for value in ids for found in [personal.digests(value)] for old in found[1:]]
    with connection.cursor() as cursor:
        execute_values(
            cursor.cursor,
            "UPDATE layers_person p SET id_number_digest = v.new FROM (VALUES %s) AS v(old, new) "
            "WHERE p.id_number_digest = v.old",
            pairs,
            page_size=10_000,
        )


def persons_upsert(*, frame: pd.DataFrame, on_batch: OnBatch = None, on_reject: OnReject = None) -> dict[str, int]:
    """Upsert persons by the keyed digest of their ID number; they take the links of their
    address (given directly or through their dwelling)."""
    _adopt_previous_digests(frame["id_number"].tolist())
    frame = _with_row(protect_persons(frame))
    for column in ("address_code", "dwelling_code", "care_tags"):
        if column not in frame.columns:
            frame[column] = ""
    frame["care_tags"] = "{" + frame["care_tags"].str.replace(";", ",", regex=False) + "}"
    create_staging("staging_person", PERSON_STAGING)
    copy_frame("staging_person", frame, PERSON_STAGING, on_batch=on_batch)
    _drop_unknown("staging_person", "dwelling_code", "layers_dwelling", "code", on_reject, "dwelling")
    _drop_unknown("staging_person", "address_code", "layers_address", "code", on_reject, "address")
    personal_columns = [c for c in PERSON_STAGING if c not in ("id", "address_code", "dwelling_code", "care_tags")]
    return _upsert(
        f"""
        INSERT INTO layers_person ({", ".join(personal_columns)}, care_tags, dwelling_id, address_id, {_LINKS})
        SELECT {", ".join(f"s.{c}" for c in personal_columns)}, s.care_tags::varchar[], d.id, a.id,
               a.grid_id, a.grid_medium_id, a.grid_large_id, a.community_id, a.street_id, coalesce(a.district_code, '')
        FROM staging_person s
        LEFT JOIN layers_dwelling d ON d.code = s.dwelling_code AND s.dwelling_code <> ''
        LEFT JOIN layers_address a ON a.id = coalesce(d.address_id,
            (SELECT id FROM layers_address WHERE code = s.address_code AND s.address_code <> ''))
        ON CONFLICT (id_number_digest) DO UPDATE SET
            {", ".join(f"{c} = EXCLUDED.{c}" for c in personal_columns if c != "id_number_digest")},
            care_tags = EXCLUDED.care_tags, dwelling_id = EXCLUDED.dwelling_id, address_id = EXCLUDED.address_id,
            {", ".join(f"{c} = EXCLUDED.{c}" for c in _LINKS.split(", "))}
        """
    )


UNIT_STAGING = {
    "id": "integer",
    "credit_code": "text",
    "name": "text",
    "kind": "text",
    "address_code": "text",
    "address_text": "text",
    "lon": "float8",
    "lat": "float8",
}


def units_upsert(*, frame: pd.DataFrame, on_batch: OnBatch = None, on_reject: OnReject = None) -> dict[str, int]:
    """Upsert units by credit code. A unit without coordinates sits at its address's point."""
    frame = _with_row(frame)
    for column in ("address_code", "address_text", "kind"):
        if column not in frame.columns:
            frame[column] = "" if column != "kind" else "enterprise"
    create_staging("staging_unit", UNIT_STAGING)
    copy_frame("staging_unit", frame, UNIT_STAGING, on_batch=on_batch)
    _drop_unknown("staging_unit", "address_code", "layers_address", "code", on_reject, "address")
    counts = _upsert(
        """
        INSERT INTO layers_unit (credit_code, name, kind, address_id, address_text, location, district_code)
        SELECT s.credit_code, s.name, s.kind, a.id, coalesce(nullif(s.address_text, ''), a.full_text, ''),
               coalesce(ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326), a.location), ''
        FROM staging_unit s LEFT JOIN layers_address a ON a.code = s.address_code AND s.address_code <> ''
        ON CONFLICT (credit_code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
            address_id = EXCLUDED.address_id, address_text = EXCLUDED.address_text, location = EXCLUDED.location
        """
    )
    _fresh_statistics("layers_unit", "staging_unit")
    linking.link(linking.UNIT, where="t.credit_code IN (SELECT credit_code FROM staging_unit)")
    return counts
