"""Rotating the personal-data key on a live city: with the old key set as previous, everything
written under it still reads (ciphertexts, lookups by digest, residents' follow-up links, the
audit anchors); ``rotate_personal_data_key`` rewrites every protected value under the new key, so
that the old one can go; a value under a key nobody configured is named by table, id and column
and nothing else is lost; a second run rewrites nothing."""

from __future__ import annotations

import base64
import json
import uuid
from io import StringIO

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from importers.base import run_import
from importers.registry import AddressImporter
from layers.models import AuditEntry, Event, Person, ResidentTicket
from layers.protection import personal
from layers.protection.audit import audit_flush, audit_record
from layers.services.key_rotation import PROTECTED, personal_data_rotate
from layers.services.residents import (
    ResidentRefused,
    TooManyReports,
    follow_token,
    resident_case_get,
    resident_report,
)
from mapserver.checks import personal_data_keys_check
from tests.worlds.events import IN_WEST, report, world
from tests.worlds.registry_tables import ADDRESS_HEADER, ID_F, ID_M, address_row, run_command, write_csv

KEY_A, KEY_B, KEY_C = (base64.urlsafe_b64encode(letter * 32).decode() for letter in (b"a", b"b", b"c"))
PERSON_HEADER = ["name", "id_number", "residence", "phone", "address_code"]
#: The clear values written under key A.
ZHANG_PHONE, EVENT_PHONE, EVENT_NAME = "13912345678", "13800001111", "王小五"
DESCRIPTION = "楼道堆放杂物，联系电话13700002222"


def use_keys(settings, current: str, *previous: str) -> None:
    settings.MINQING_PERSONAL_DATA_KEY = current
    settings.MINQING_PERSONAL_DATA_KEY_PREVIOUS = list(previous)


def verify() -> str:
    """verify_audit_log's message, success or failure."""
    out = StringIO()
    try:
        call_command("verify_audit_log", verbosity=0, stdout=out)
    except CommandError as error:
        return str(error)
    return out.getvalue()


def rotate(*options: str) -> tuple[list[str], str]:
    """rotate_personal_data_key's output lines and its error ("" when it succeeds)."""
    out = StringIO()
    try:
        call_command("rotate_personal_data_key", *options, verbosity=0, stdout=out)
    except CommandError as error:
        return out.getvalue().splitlines(), str(error)
    return out.getvalue().splitlines(), ""


@pytest.fixture
def city(db, settings, tmp_path):
    """Under key A: two persons (张三 with a phone), an event with a reporter's name and phone and
    a description that masking changed, a resident's report with a phone, and an anchored audit
    log."""
    use_keys(settings, KEY_A)
    settings.MINQING_AUDIT_ANCHOR_FILE = str(tmp_path / "anchors.jsonl")
    settings.MINQING_RESIDENT_PHONE_REPORTS = 1
    world()
    run_import(AddressImporter(), write_csv(tmp_path / "a.csv", ADDRESS_HEADER, [address_row("A1")]), commit=True)
    rows = [["张三", ID_F, "户籍", ZHANG_PHONE, "A1"], ["李四", ID_M, "流动", "", "A1"]]
    run_command("import_persons", write_csv(tmp_path / "persons.csv", PERSON_HEADER, rows), "--commit")
    event = report(description=DESCRIPTION, reporter_name=EVENT_NAME, reporter_phone=EVENT_PHONE)
    client_id = str(uuid.uuid4())
    receipt = resident_report(
        client_id=client_id,
        category_code="municipal.streetlight",
        description="路灯不亮",
        source="tap",
        lon=IN_WEST[0],
        lat=IN_WEST[1],
        phone="13600003333",
    )
    audit_record(action="probe", target="probe:1")
    audit_flush()
    call_command("anchor_audit_log", stdout=StringIO())
    return {"event": event, "client_id": client_id, "token": receipt.token, "ticket": receipt.ticket, "dir": tmp_path}


def clear_values() -> dict:
    """Every protected value of the city, decrypted (under whatever keys are configured)."""
    zhang, li = Person.objects.get(name="张三"), Person.objects.get(name="李四")
    event = Event.objects.get(reporter_name_masked="王**")
    return {
        "zhang": (personal.decrypt(zhang.id_number_cipher), personal.decrypt(zhang.phone_cipher)),
        "li": (personal.decrypt(li.id_number_cipher), li.phone_cipher),
        "event": (
            personal.decrypt(event.description_cipher),
            personal.decrypt(event.reporter_name_cipher),
            personal.decrypt(event.reporter_phone_cipher),
        ),
    }


EXPECTED = {
    "zhang": (ID_F, ZHANG_PHONE),
    "li": (ID_M, ""),
    "event": (DESCRIPTION, EVENT_NAME, EVENT_PHONE),
}


def stored_under_current_key() -> None:
    """Every ciphertext opens under the current key alone and every digest is the current key's."""
    for spec in PROTECTED:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(spec.columns)} FROM {spec.table}")
            rows = cursor.fetchall()
        assert rows
        for row in rows:
            stored = dict(zip(spec.columns, row, strict=True))
            for cipher_column, digest_column in spec.values:
                if not stored[cipher_column]:
                    continue
                value, index = personal.decrypt_with_index(stored[cipher_column])
                assert index == 0, (spec.table, cipher_column)
                if digest_column:
                    assert stored[digest_column] == personal.digest(value), (spec.table, digest_column)


# --- reading under the previous key ------------------------------------------------------------------


def test_with_the_old_key_as_previous_everything_still_reads(city, settings):
    use_keys(settings, KEY_B, KEY_A)
    assert clear_values() == EXPECTED
    # Lookups by digest: the admin's search by ID number, the per-phone limit of residents.
    assert Person.objects.get(id_number_digest__in=personal.digests(ID_F)).name == "张三"
    assert personal.digests(ID_F)[0] == personal.digest(ID_F) != personal.digests(ID_F)[1]
    with pytest.raises(TooManyReports):
        resident_report(
            client_id=str(uuid.uuid4()),
            category_code="municipal.streetlight",
            description="又不亮了",
            source="tap",
            lon=IN_WEST[0],
            lat=IN_WEST[1],
            phone="13600003333",
        )
    # The audit anchors signed under key A are trusted.
    assert "audit log intact" in verify()


def test_a_follow_up_link_issued_under_the_old_key_keeps_working(city, settings):
    use_keys(settings, KEY_B, KEY_A)
    assert resident_case_get(token=city["token"]) == city["ticket"]
    # A resend of that report answers with the token the resident holds, not the new key's.
    resend = resident_report(
        client_id=city["client_id"],
        category_code="municipal.streetlight",
        description="路灯不亮",
        source="tap",
        lon=IN_WEST[0],
        lat=IN_WEST[1],
    )
    assert (resend.created, resend.token) == (False, city["token"])
    assert follow_token(city["client_id"]) != city["token"]
    # A new report gets a token under the new key.
    fresh_id = str(uuid.uuid4())
    fresh = resident_report(
        client_id=fresh_id, category_code="municipal.streetlight", description="井盖缺失", source="tap",
        lon=IN_WEST[0], lat=IN_WEST[1],
    )  # fmt: skip
    assert fresh.token == follow_token(fresh_id)
    assert resident_case_get(token=fresh.token) == fresh.ticket


def test_a_residents_link_through_the_api_before_during_and_after_the_rotation(city, settings):
    """The page's view: the case opens with the old token throughout; a resend answers with it
    while the old key is a previous one, and is a 409 naming the field once it is gone."""
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.get("/report/")
    csrf = client.cookies["csrftoken"].value
    body = {
        "client_id": str(uuid.uuid4()),
        "category": "municipal.streetlight",
        "description": "路灯不亮",
        "source": "tap",
        "location": {"lon": IN_WEST[0], "lat": IN_WEST[1]},
    }

    def send():
        return client.post(
            "/api/resident/reports", json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=csrf
        )

    def case(token: str) -> int:
        return client.get("/api/resident/case", HTTP_X_FOLLOW_TOKEN=token).status_code

    first = send()
    assert first.status_code == 201
    token = first.json()["token"]
    use_keys(settings, KEY_B, KEY_A)
    again = send()
    assert (again.status_code, again.json()["token"], case(token)) == (200, token, 200)
    assert rotate()[1] == ""
    use_keys(settings, KEY_B)
    assert case(token) == 200
    refused = send()
    assert refused.status_code == 409
    assert refused.json()["error"]["message"].startswith(
        "client_id: this report was stored before the server's key changed"
    )


def test_a_reimport_under_the_new_key_updates_the_person_stored_under_the_old_one(city, settings, tmp_path):
    use_keys(settings, KEY_B, KEY_A)
    zhang = Person.objects.get(name="张三")
    path = write_csv(tmp_path / "again.csv", PERSON_HEADER, [["张三丰", ID_F, "户籍", "", "A1"]])
    assert run_command("import_persons", path, "--commit") == [
        "again.csv: committed: rows 1, created 0, updated 1, rejected 0"
    ]
    again = Person.objects.get(id_number_digest=personal.digest(ID_F))
    assert (again.pk, again.name, Person.objects.count()) == (zhang.pk, "张三丰", 2)


def test_without_the_previous_key_the_old_data_does_not_read(city, settings):
    """Why the command must run before the previous key is removed."""
    use_keys(settings, KEY_B)
    with pytest.raises(personal.UnreadableValue):
        clear_values()
    assert verify().endswith("line 1: its HMAC does not match (the file was altered)")


# --- the command -------------------------------------------------------------------------------------


def test_the_dry_run_counts_rows_per_key_and_writes_nothing(city, settings):
    use_keys(settings, KEY_B, KEY_A)
    before = list(Person.objects.values_list("id_number_cipher", "id_number_digest"))
    entries = AuditEntry.objects.count()
    lines, error = rotate("--dry-run")
    assert error == ""
    assert lines == [
        "密钥 keys: current and 1 previous (dry run: nothing is written)",
        "layers_person: 2 rows (current 0, previous 1 2); would rewrite 2",
        "layers_event: 2 rows (current 0, previous 1 2); would rewrite 2",
    ]
    assert list(Person.objects.values_list("id_number_cipher", "id_number_digest")) == before
    assert AuditEntry.objects.count() == entries


def test_the_command_rewrites_everything_and_then_the_old_key_can_go(city, settings):
    use_keys(settings, KEY_B, KEY_A)
    lines, error = rotate("--batch", "1")
    head = AuditEntry.objects.order_by("-seq").first()
    assert error == ""
    assert lines == [
        "密钥 keys: current and 1 previous",
        "layers_person: 2 rows (current 0, previous 1 2); rewritten 2",
        "layers_event: 2 rows (current 0, previous 1 2); rewritten 2",
        f"锚点 audit anchors: 1 signed again under the current key; head {head.seq}:{head.hash} anchored in "
        f"{settings.MINQING_AUDIT_ANCHOR_FILE}",
        "完成 done: 4 rows rewritten under the current key; run verify_audit_log, then remove "
        "MINQING_PERSONAL_DATA_KEY_PREVIOUS",
    ]
    assert (head.action, head.target) == ("personal.rotate_key", "personal_data_key")
    assert head.detail["tables"] == {
        "layers_person": {"rows": 2, "rewritten": 2},
        "layers_event": {"rows": 2, "rewritten": 2},
    }
    anchors = [json.loads(line) for line in open(settings.MINQING_AUDIT_ANCHOR_FILE, encoding="utf-8")]
    assert [a["seq"] for a in anchors][-1] == head.seq

    use_keys(settings, KEY_B)  # the previous key removed
    assert clear_values() == EXPECTED
    stored_under_current_key()
    assert Person.objects.get(id_number_digest=personal.digest(ID_F)).name == "张三"
    assert Person.objects.get(phone_digest=personal.digest(ZHANG_PHONE)).name == "张三"
    assert Event.objects.filter(reporter_phone_digest=personal.digest(EVENT_PHONE)).count() == 1
    assert "audit log intact" in verify()
    # The resident's old link still opens the case (only its digest is stored, under no key) …
    assert resident_case_get(token=city["token"]) == city["ticket"]
    # … but a resend can no longer make it again: the page is told to use the saved link.
    with pytest.raises(ResidentRefused) as refused:
        resident_report(
            client_id=city["client_id"], category_code="municipal.streetlight", description="路灯不亮",
            source="tap", lon=IN_WEST[0], lat=IN_WEST[1],
        )  # fmt: skip
    assert str(refused.value) == (
        "client_id: this report was stored before the server's key changed: open it with the link the first answer gave"
    )


def test_a_second_run_rewrites_nothing(city, settings):
    use_keys(settings, KEY_B, KEY_A)
    assert rotate()[1] == ""
    ciphers = list(Event.objects.order_by("pk").values_list("reporter_phone_cipher", "description_cipher"))
    lines, error = rotate()
    assert error == ""
    assert lines[1:3] == [
        "layers_person: 2 rows (current 2, previous 1 0); rewritten 0",
        "layers_event: 2 rows (current 2, previous 1 0); rewritten 0",
    ]
    assert list(Event.objects.order_by("pk").values_list("reporter_phone_cipher", "description_cipher")) == ciphers


def test_a_value_under_an_unknown_key_is_named_and_nothing_else_is_lost(city, settings):
    event = city["event"]
    use_keys(settings, KEY_C)
    foreign = personal.encrypt("赵六")
    Event.objects.filter(pk=event.pk).update(reporter_name_cipher=foreign)
    use_keys(settings, KEY_B, KEY_A)
    lines, error = rotate()
    assert lines[1:4] == [
        "layers_person: 2 rows (current 0, previous 1 2); rewritten 2",
        "layers_event: 2 rows (current 0, previous 1 1, unreadable 1); rewritten 2",
        f"unreadable: layers_event id {event.pk} (reporter_name_cipher)",
    ]
    assert error == (
        "1 rows hold values no configured key opens (listed above); nothing of them was lost: set the key they "
        "were written under in MINQING_PERSONAL_DATA_KEY_PREVIOUS and run again"
    )
    assert not any("赵六" in line for line in lines)
    stored = Event.objects.get(pk=event.pk)
    assert stored.reporter_name_cipher == foreign  # left as it was
    use_keys(settings, KEY_B)  # the row's other values were rewritten
    assert personal.decrypt_with_index(stored.reporter_phone_cipher) == (EVENT_PHONE, 0)
    assert personal.decrypt(stored.description_cipher) == DESCRIPTION
    # With the unknown key given as previous, a run finishes the job.
    use_keys(settings, KEY_B, KEY_C)
    assert rotate()[1] == ""
    use_keys(settings, KEY_B)
    assert personal.decrypt(Event.objects.get(pk=event.pk).reporter_name_cipher) == "赵六"
    stored_under_current_key()


def test_a_person_stored_twice_under_two_keys_is_named_and_kept(city, settings, tmp_path):
    """A person imported again under the new key with no previous key set is stored a second
    time; the rotation cannot give both the same digest, names the pair and keeps both."""
    use_keys(settings, KEY_B)
    path = write_csv(tmp_path / "again.csv", PERSON_HEADER, [["张三", ID_F, "户籍", "", "A1"]])
    run_command("import_persons", path, "--commit")
    old, new = Person.objects.filter(name="张三").order_by("pk")
    use_keys(settings, KEY_B, KEY_A)
    lines, error = rotate("--batch", "5")
    assert lines[1:4] == [
        "layers_person: 3 rows (current 1, previous 1 2); rewritten 1",
        "layers_event: 2 rows (current 0, previous 1 2); rewritten 2",
        f"duplicate: layers_person id {old.pk} holds the same value as id {new.pk}",
    ]
    assert error == (
        "1 rows hold the same value as another row under the current key (listed above) and were left under the "
        "old key: merge each pair, then run again"
    )
    kept = Person.objects.get(pk=old.pk)
    assert (kept.id_number_cipher, kept.id_number_digest) == (old.id_number_cipher, old.id_number_digest)
    assert personal.decrypt(Person.objects.get(name="李四").id_number_cipher) == ID_M
    assert AuditEntry.objects.order_by("-seq").first().detail["duplicates"] == [
        {"table": "layers_person", "id": old.pk, "other": new.pk}
    ]


def test_the_service_counts_rows_by_the_oldest_key_of_their_values(city, settings):
    use_keys(settings, KEY_B, KEY_A)
    # 张三's phone rewritten under B by hand, his ID number still under A: the row counts as A's.
    Person.objects.filter(name="张三").update(
        phone_cipher=personal.encrypt(ZHANG_PHONE), phone_digest=personal.digest(ZHANG_PHONE)
    )
    use_keys(settings, KEY_C, KEY_B, KEY_A)
    report = personal_data_rotate(dry_run=True)
    person = report.tables[0]
    assert (person.table, dict(person.by_key)) == ("layers_person", {"previous 2": 2})
    assert report.rewritten == 4 and report.unreadable == []


# --- settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "message"),
    [
        (["not base64!"], "MINQING_PERSONAL_DATA_KEY_PREVIOUS entry 1 is not URL-safe base64"),
        (
            [KEY_A, base64.urlsafe_b64encode(b"k" * 16).decode()],
            "MINQING_PERSONAL_DATA_KEY_PREVIOUS entry 2 must decode to 32 bytes, got 16",
        ),
        (
            [KEY_B],
            "MINQING_PERSONAL_DATA_KEY_PREVIOUS entry 1 is the current key (MINQING_PERSONAL_DATA_KEY): "
            "give the keys used before it",
        ),
        (f"{KEY_A},,{KEY_C}", "MINQING_PERSONAL_DATA_KEY_PREVIOUS entry 2 is empty"),
    ],
    ids=["not base64", "16 bytes", "the current key", "an empty entry"],
)
def test_a_bad_previous_key_fails_with_an_exact_message(db, settings, previous, message):
    settings.MINQING_PERSONAL_DATA_KEY = KEY_B
    settings.MINQING_PERSONAL_DATA_KEY_PREVIOUS = previous
    with pytest.raises(ImproperlyConfigured) as error:
        personal.decrypt(personal.encrypt("x"))
    assert str(error.value) == message
    with pytest.raises(ImproperlyConfigured) as error:
        call_command("rotate_personal_data_key", "--dry-run", stdout=StringIO())
    assert str(error.value) == message
    # The system check of every management command says the same (and the ASGI entry refuses to start).
    assert [(e.id, e.msg) for e in personal_data_keys_check()] == [("minqing.E102", message)]


def test_good_keys_pass_the_system_check(settings):
    use_keys(settings, KEY_B, KEY_A)
    assert personal_data_keys_check() == []


def test_a_comma_separated_previous_setting_is_read_newest_first(settings):
    use_keys(settings, KEY_A)
    old = personal.encrypt("x")
    settings.MINQING_PERSONAL_DATA_KEY = KEY_C
    settings.MINQING_PERSONAL_DATA_KEY_PREVIOUS = f" {KEY_B} , {KEY_A} "
    assert personal.key_labels() == ["current", "previous 1", "previous 2"]
    assert personal.decrypt_with_index(old) == ("x", 2)


def test_every_protected_column_of_every_model_is_rotated():
    """A new ``_cipher`` column (or a digest beside one) must be added to PROTECTED."""
    found = set()
    for model in apps.get_app_config("layers").get_models():
        names = {f.column for f in model._meta.concrete_fields}
        for name in names:
            if name.endswith("_cipher"):
                found.add((model._meta.db_table, name))
                if name.replace("_cipher", "_digest") in names:
                    found.add((model._meta.db_table, name.replace("_cipher", "_digest")))
    listed = {(spec.table, column) for spec in PROTECTED for column in spec.columns}
    assert found == listed
    assert "token_digest" not in {column for _, column in listed}  # a SHA-256 under no key
    assert ResidentTicket._meta.get_field("token_digest")
