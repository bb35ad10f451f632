"""Personal data at rest: after an import the database holds ID numbers and phones only as
ciphertext, keyed digest and masked form; the ciphertext decrypts, the digest finds the person,
and a re-import of the same ID number updates that person."""

from __future__ import annotations

import base64

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from importers.base import run_import
from importers.registry import AddressImporter
from layers.models import Person
from layers.protection import personal
from tests.worlds.factories import grid_tree, region_chain
from tests.worlds.registry_tables import ADDRESS_HEADER, ID_F, ID_M, address_row, run_command, write_csv

HEADER = ["name", "id_number", "residence", "phone", "address_code"]
PHONE = "13912345678"


@pytest.fixture
def persons(tmp_path, db):
    """张三 (ID_F, phone written with dashes) and 李四 (ID_M, no phone) at address A1."""
    grid_tree(region_chain()["community"])
    run_import(AddressImporter(), write_csv(tmp_path / "a.csv", ADDRESS_HEADER, [address_row("A1")]), commit=True)
    rows = [["张三", ID_F, "户籍", "139-1234-5678", "A1"], ["李四", ID_M, "流动", "", "A1"]]
    run_command("import_persons", write_csv(tmp_path / "persons.csv", HEADER, rows), "--commit")
    return {person.name: person for person in Person.objects.all()}


def test_no_clear_id_number_or_phone_is_stored_anywhere_in_the_person_rows(persons):
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(p)::text FROM layers_person p")
        rows = [text for (text,) in cursor.fetchall()]
    assert len(rows) == 2
    for clear in (ID_F, ID_M, PHONE, "139-1234-5678", ID_F[6:14], ID_M[6:14]):
        assert not any(clear in text for text in rows), clear


def test_masked_forms_keep_only_the_region_code_carrier_and_last_four(persons):
    zhang, li = persons["张三"], persons["李四"]
    assert (zhang.id_number_masked, zhang.phone_masked) == (ID_F[:6] + "*" * 11 + ID_F[-1:], "139****5678")
    assert (li.id_number_masked, li.phone_masked, li.phone_cipher, li.phone_digest) == (
        ID_M[:6] + "*" * 11 + ID_M[-1:],
        "",
        "",
        "",
    )


def test_the_ciphertext_decrypts_and_the_digest_finds_the_person(persons):
    zhang = persons["张三"]
    assert personal.decrypt(zhang.id_number_cipher) == ID_F
    assert personal.decrypt(zhang.phone_cipher) == PHONE
    assert Person.objects.get(id_number_digest=personal.digest(ID_F)) == zhang
    assert Person.objects.get(phone_digest=personal.digest(PHONE)) == zhang
    assert not Person.objects.filter(id_number_digest=personal.digest(ID_F[:-1] + "9")).exists()


def test_gender_and_birth_date_are_derived_from_the_id_number(persons):
    assert (persons["张三"].gender, persons["张三"].birth_date.isoformat()) == ("F", "1980-01-01")
    assert (persons["李四"].gender, persons["李四"].birth_date.isoformat()) == ("M", "1995-07-15")


def test_a_reimport_with_the_same_id_number_updates_instead_of_duplicating(persons, tmp_path):
    path = write_csv(tmp_path / "again.csv", HEADER, [["张三丰", ID_F, "流动", "0931-8123456", "A1"]])
    assert run_command("import_persons", path, "--commit") == [
        "again.csv: committed: rows 1, created 0, updated 1, rejected 0"
    ]
    again = Person.objects.get(id_number_digest=personal.digest(ID_F))
    assert (again.pk, again.name, again.residence, again.phone_masked) == (
        persons["张三"].pk,
        "张三丰",
        "floating",
        "0931****3456",
    )
    assert personal.decrypt(again.phone_cipher) == "09318123456"
    assert Person.objects.count() == 2


def test_encryption_is_randomised_but_the_digest_is_stable(settings):
    assert personal.encrypt(ID_F) != personal.encrypt(ID_F)
    assert personal.digest(ID_F) == personal.digest(ID_F) != personal.digest(ID_M)
    before = personal.digest(ID_F)
    settings.MINQING_PERSONAL_DATA_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()
    assert personal.digest(ID_F) != before  # a keyed digest: no table of all ID numbers reverses it


@pytest.mark.parametrize(
    ("value", "masked"),
    [("13912345678", "139****5678"), ("139 1234 5678", "139****5678"), ("0931-8123456", "0931****3456"),
     ("8123456", "*******"), ("+8613912345678", "+86****5678")],
)  # fmt: skip
def test_phones_are_masked(value, masked):
    assert personal.mask_phone(value) == masked


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "MINQING_PERSONAL_DATA_KEY is not set"),
        ("not base64!", "MINQING_PERSONAL_DATA_KEY is not URL-safe base64"),
        (base64.urlsafe_b64encode(b"k" * 16).decode(), "MINQING_PERSONAL_DATA_KEY must decode to 32 bytes, got 16"),
    ],
    ids=["unset", "not base64", "16 bytes"],
)
def test_a_bad_key_fails_with_an_exact_message(settings, key, message):
    settings.MINQING_PERSONAL_DATA_KEY = key
    with pytest.raises(ImproperlyConfigured) as error:
        personal.digest(ID_F)
    assert str(error.value) == message
