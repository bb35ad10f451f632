"""The residents' services: a report without an account (idempotent by the page's id, the token
never stored), the per-phone limit, photos, the resident's one answer per resolution through the
closed loop's own action service, and the public summaries' moderation (not by their author)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone
from PIL import Image

from layers.errors import ActionNotPermitted, InvalidInput, RecordNotFound
from layers.models import AuditEntry, Event, EventPhoto, PublicSummary, ResidentTicket
from layers.protection.access import RESIDENT, RESIDENT_READER, SYSTEM, reader_of
from layers.protection.audit import audit_flush
from layers.services import residents
from layers.services.events import event_act
from layers.services.residents import (
    ResidentRefused,
    TooManyReports,
    follow_token,
    resident_answer,
    resident_case_get,
    resident_photo_add,
    resident_report,
)
from layers.services.summaries import public_summary_moderate, public_summary_propose
from tests.worlds.events import IN_EAST, IN_WEST, report, world


@pytest.fixture
def area(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return world()


def send(**overrides) -> residents.Receipt:
    arguments = {
        "client_id": str(uuid.uuid4()),
        "category_code": "municipal.streetlight",
        "description": "路灯不亮",
        "source": "tap",
        "lon": IN_WEST[0],
        "lat": IN_WEST[1],
    } | overrides
    return resident_report(**arguments)


def handled(event: Event, *steps: str) -> Event:
    for action in steps:
        event = event_act(event=event, action=action, reader=SYSTEM, reason="已处理" if action == "resolve" else "")
    return event


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 20, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


# --- a report --------------------------------------------------------------------------------------


def test_a_report_is_stored_on_the_app_channel_with_a_ticket_and_a_token_never_stored(area):
    client_id = "3f2b9c1e-0d6a-4f5e-9a7b-2c8d1e0f4a6b"
    receipt = send(client_id=client_id, phone="13912345678", description="路灯不亮，电话13912345678")
    event = receipt.event
    assert receipt.created
    assert (event.channel, event.grid, event.status) == ("app", area["west"], "assigned")
    assert event.external_id == "XL-2b8234dde44b4945791c9d3cba21612f5511df377e9a48c6"
    assert client_id not in event.external_id
    assert event.description == "路灯不亮，电话139****5678"
    assert (event.reporter_phone_masked, event.reporter_name_masked) == ("139****5678", "")
    assert event.transitions.get(action="receive").actor_label == "居民 (resident)"
    local = timezone.localtime(event.received_at)
    assert receipt.ticket.ticket == f"XL{local:%Y%m%d}{event.pk:06d}"
    assert len(receipt.token) == 32 and receipt.token == follow_token(client_id)
    assert receipt.ticket.token_digest == hashlib.sha256(receipt.token.encode()).hexdigest()
    # The token is nowhere in the database: every text column of every table is searched.
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb')"""
        )
        for table, column in cursor.fetchall():
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s', [f"%{receipt.token}%"])
            assert cursor.fetchone()[0] == 0, (table, column)
    audit_flush()
    entry = AuditEntry.objects.get(action="resident.report")
    # Outside a request the actor is the command's account; through /api/resident/ it is anonymous.
    assert (entry.target, entry.detail) == (f"event:{event.pk}", {"ticket": receipt.ticket.ticket})


def test_a_resend_gets_the_same_ticket_and_token_and_stores_nothing(area):
    first = send(client_id="0b3c1a55-9d2e-4f60-8a71-1c2d3e4f5a6b")
    again = send(client_id="0b3c1a55-9d2e-4f60-8a71-1c2d3e4f5a6b", description="路灯还是不亮")
    assert (again.created, again.ticket.pk, again.token, again.event.pk) == (
        False,
        first.ticket.pk,
        first.token,
        first.event.pk,
    )
    assert Event.objects.count() == ResidentTicket.objects.count() == 1
    assert Event.objects.get().description == "路灯不亮"


def test_a_token_opens_its_case_and_nothing_else(area):
    receipt = send()
    assert resident_case_get(token=receipt.token).pk == receipt.ticket.pk
    other = send()
    assert resident_case_get(token=other.token).pk == other.ticket.pk
    for token in (
        "",
        "x" * 32,
        receipt.token[:-1] + ("A" if receipt.token[-1] != "A" else "B"),
        receipt.token + "x",
        receipt.ticket.ticket,
    ):
        with pytest.raises(RecordNotFound) as refused:
            resident_case_get(token=token)
        assert refused.value.message == ("token: this follow-up link opens no case; check the link you saved")


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"client_id": "short-id-1"}, "client_id", "must be a UUID made by the page (lower-case, 36 characters)"),
        (
            {"client_id": "3F2B9C1E-0D6A-4F5E-9A7B-2C8D1E0F4A6B"},
            "client_id",
            "must be a UUID made by the page (lower-case, 36 characters)",
        ),
        ({"description": "长" * 2001}, "description", "at most 2,000 characters, got 2,001"),
        ({"source": "radar"}, "location.source", "must be one of gps, tap, address, got 'radar'"),
        (
            {"source": "address", "lon": None, "lat": None},
            "address",
            "type the address, or choose the place on the map",
        ),
        ({"lon": None, "lat": None}, "location", "is required when the place comes from tap"),
        ({"source": "gps"}, "location.accuracy_m", "is required for a GPS fix"),
        (
            {"source": "gps", "accuracy_m": 900},
            "location.accuracy_m",
            "a fix accurate to 900 m is too vague; at most 200 m: tap the map or type the address",
        ),
        ({"phone": "0931-8123456"}, "phone", "an 11-digit mobile number, e.g. 13912345678"),
        ({"phone": "1391234567"}, "phone", "an 11-digit mobile number, e.g. 13912345678"),
        ({"category_code": "hazard.meteor"}, "category", "unknown category 'hazard.meteor'"),
    ],
)
def test_bad_reports_name_the_field(area, overrides, field, message):
    with pytest.raises(InvalidInput) as refused:
        send(**overrides)
    assert (refused.value.field, refused.value.message) == (field, f"{field}: {message}")
    assert not Event.objects.exists()


def test_a_typed_address_is_geocoded_by_intake(area, city_address):
    receipt = send(source="address", lon=None, lat=None, address="畅家巷1号")
    event = receipt.event
    assert (event.geocode_method, event.grid, event.matched_address.code) == ("address", area["west"], "A001")


@pytest.fixture
def city_address(area):
    from django.contrib.gis.geos import Point

    from layers.geocoding.index import address_index_reset
    from layers.models import Address
    from layers.services import linking

    Address.objects.create(
        code="A001",
        road="畅家巷",
        door_number="1号",
        full_text="城关区酒泉路街道畅家巷1号",
        location=Point(*IN_WEST, srid=4326),
    )
    linking.relink_all()
    address_index_reset()
    yield
    address_index_reset()


def test_the_per_phone_limit_counts_in_the_database_and_a_resend_is_free(area, settings):
    settings.MINQING_RESIDENT_PHONE_REPORTS = 2
    ids = [str(uuid.uuid4()) for _ in range(3)]
    send(client_id=ids[0], phone="13912345678")
    send(client_id=ids[1], phone="13912345678")
    with pytest.raises(TooManyReports) as refused:
        send(client_id=ids[2], phone="13912345678")
    assert refused.value.status == 429
    assert refused.value.message == (
        "phone: this phone number sent 2 reports within 24 hours; try again later or call 12345"
    )
    assert 86_000 < refused.value.retry_after <= 86_401
    # A resend of a stored report is answered, not counted; another phone is not limited.
    assert send(client_id=ids[0], phone="13912345678").created is False
    assert send(phone="13812345678").created
    # The window slides: reports older than it no longer count.
    Event.objects.filter(reporter_phone_masked="139****5678").update(
        received_at=timezone.now() - dt.timedelta(hours=25)
    )
    assert send(client_id=ids[2], phone="13912345678").created


# --- photos ----------------------------------------------------------------------------------------


def test_photos_are_checked_counted_and_resent_once(area, settings):
    receipt = send()
    for n in range(3):
        photo, created = resident_photo_add(ticket=receipt.ticket, content=jpeg(), client_id=f"photo-000{n}")
        assert created and photo.uploaded_by is None
    again, created = resident_photo_add(ticket=receipt.ticket, content=jpeg(), client_id="photo-0001")
    assert not created
    with pytest.raises(ResidentRefused) as refused:
        resident_photo_add(ticket=receipt.ticket, content=jpeg(), client_id="photo-0009")
    assert (refused.value.status, refused.value.message) == (
        409,
        "photo: at most 3 photos per report",
    )
    with pytest.raises(InvalidInput) as damaged:
        resident_photo_add(ticket=send().ticket, content=b"GIF89a not a photo", client_id="photo-0010")
    assert damaged.value.message == "photo: is not an image; send a JPEG, PNG or WebP photo"
    assert (
        list(receipt.event.transitions.filter(action="photo").values_list("actor_label", flat=True))
        == ["居民 (resident)"] * 3
    )
    late = send()
    ResidentTicket.objects.filter(pk=late.ticket.pk).update(created_at=timezone.now() - dt.timedelta(hours=25))
    late.ticket.refresh_from_db()
    with pytest.raises(ResidentRefused) as closed:
        resident_photo_add(ticket=late.ticket, content=jpeg(), client_id="photo-0011")
    assert closed.value.message == "photo: photos can be added within 24 hours of the report"
    assert EventPhoto.objects.count() == 3


# --- the resident's answer ------------------------------------------------------------------------


def test_the_resident_rates_once_per_resolution(area):
    receipt = send()
    with pytest.raises(ResidentRefused) as early:
        resident_answer(ticket=receipt.ticket, action="rate", satisfaction=5)
    assert early.value.message == "action: the case is not resolved yet; answer once it is"
    handled(receipt.event, "accept", "resolve")
    ticket = resident_answer(ticket=receipt.ticket, action="rate", satisfaction=4, comment="还行，电话13912345678")
    event = Event.objects.get(pk=receipt.event.pk)
    assert (event.satisfaction, event.status, ticket.answer) == (4, "resolved", "rate")
    step = event.transitions.get(action="rate")
    assert (step.actor_id, step.actor_label, step.reason) == (
        None,
        f"居民 (resident) {ticket.ticket}",
        "还行，电话139****5678",
    )
    with pytest.raises(ResidentRefused) as twice:
        resident_answer(ticket=ticket, action="rate", satisfaction=5)
    assert twice.value.message == "action: you already answered this resolution"
    audit_flush()
    assert AuditEntry.objects.get(action="resident.rate").detail == {"ticket": ticket.ticket, "satisfaction": 4}


def test_the_resident_reopens_within_the_window_and_answers_the_next_resolution(area, settings):
    receipt = send()
    event = handled(receipt.event, "accept", "resolve")
    with pytest.raises(InvalidInput) as satisfied:
        resident_answer(ticket=receipt.ticket, action="reopen", satisfaction=4)
    assert satisfied.value.message == (
        "satisfaction: reopening needs an unsatisfied citizen (satisfaction 1 or 2), got 4"
    )
    ticket = resident_answer(ticket=receipt.ticket, action="reopen", satisfaction=1, comment="灯还是不亮")
    event = Event.objects.get(pk=event.pk)
    assert (event.status, event.reopen_count, event.satisfaction) == ("reopened", 1, 1)
    event = handled(event, "assign", "accept", "resolve")
    ticket = resident_answer(ticket=ticket, action="rate", satisfaction=5)
    assert Event.objects.get(pk=event.pk).satisfaction == 5
    # Beyond the window a reopening is refused (rating stays possible until answered).
    other = send()
    handled(other.event, "accept", "resolve")
    Event.objects.filter(pk=other.event.pk).update(resolved_at=timezone.now() - dt.timedelta(days=8))
    with pytest.raises(ResidentRefused) as late:
        resident_answer(ticket=other.ticket, action="reopen", satisfaction=1)
    assert late.value.message == ("action: a case can be reopened within 7 days of its resolution; call 12345")
    assert resident_answer(ticket=other.ticket, action="rate", satisfaction=2).answer == "rate"


def test_the_residents_role_is_the_token_holders_alone(area, django_user_model):
    """The resident's duties (rate, reopen) are held by RESIDENT_READER only: a user put in a
    group of that name gets nothing, and the resident can take no other step."""
    event = handled(report(at=IN_EAST), "accept", "resolve")
    user = django_user_model.objects.create_user("pretender")
    user.groups.add(Group.objects.get_or_create(name=RESIDENT)[0])
    with pytest.raises(ActionNotPermitted):
        event_act(event=event, action="rate", reader=reader_of(user), data={"satisfaction": 5})
    for action in ("verify", "return", "locate"):
        with pytest.raises(ActionNotPermitted):
            event_act(event=event, action=action, reader=RESIDENT_READER, reason="x")
    assert event_act(event=event, action="rate", reader=RESIDENT_READER, data={"satisfaction": 3}).satisfaction == 3


# --- public summaries ------------------------------------------------------------------------------


@pytest.fixture
def staff(django_user_model):
    def make(name: str, role: str):
        user = django_user_model.objects.create_user(name)
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user

    return make


def test_a_summary_is_approved_by_another_moderator_only(area, staff):
    event = handled(report(at=IN_WEST, reporter_name="王伟芳"), "accept", "resolve")
    author, other = staff("author", "command_center"), staff("other", "command_center")
    summary = public_summary_propose(
        event=event, reader=reader_of(author), author=author, text="  楼道杂物已清理，\n消防通道恢复畅通。 "
    )
    assert (summary.status, summary.text) == ("pending", "楼道杂物已清理， 消防通道恢复畅通。")
    with pytest.raises(ActionNotPermitted) as own:
        public_summary_moderate(summary_id=summary.pk, reader=reader_of(author), moderator=author, decision="approve")
    assert own.value.message == (
        "action 'moderate': the author of a public summary may not moderate it; another moderator must"
    )
    approved = public_summary_moderate(
        summary_id=summary.pk, reader=reader_of(other), moderator=other, decision="approve"
    )
    assert (approved.status, approved.moderator) == ("approved", other)
    with pytest.raises(InvalidInput) as again:
        public_summary_moderate(summary_id=summary.pk, reader=reader_of(other), moderator=other, decision="reject")
    assert again.value.message == "summary: already moderated: approved"
    audit_flush()
    assert list(
        AuditEntry.objects.filter(action__startswith="summary.").order_by("seq").values_list("action", flat=True)
    ) == [
        "summary.propose",
        "summary.approve",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("短", "text: a summary of 10 to 300 characters"),
        (
            "已联系反映人 13912345678，问题已解决。",
            "text: a public summary must not hold an ID number or a phone number",
        ),
        (
            "已联系反映人 139****5678，问题已解决。",
            "text: a public summary must not hold an ID number or a phone number",
        ),
        (
            "反映人王伟芳家门口的杂物已清理完毕。",
            "text: a public summary must not name the reporter",
        ),
    ],
)
def test_a_summary_holding_personal_data_is_refused(area, staff, text, message):
    event = handled(report(at=IN_WEST, reporter_name="王伟芳"), "accept", "resolve")
    author = staff("author", "command_center")
    with pytest.raises(InvalidInput) as refused:
        public_summary_propose(event=event, reader=reader_of(author), author=author, text=text)
    assert refused.value.message == message
    assert not PublicSummary.objects.exists()


def test_who_writes_and_who_moderates_summaries(area, staff):
    event = report(at=IN_WEST)
    worker = staff("worker", "grid_worker")
    with pytest.raises(ActionNotPermitted):
        public_summary_propose(event=event, reader=reader_of(worker), author=worker, text="路灯已修好，恢复照明。")
    writer = staff("street", "street_staff")
    with pytest.raises(InvalidInput) as open_case:
        public_summary_propose(event=event, reader=reader_of(writer), author=writer, text="路灯已修好，恢复照明。")
    assert open_case.value.message == "event: only completed cases are published; this one is assigned"
    event = handled(event, "accept", "resolve")
    summary = public_summary_propose(
        event=event, reader=reader_of(writer), author=writer, text="路灯已修好，恢复照明。"
    )
    with pytest.raises(ActionNotPermitted):
        public_summary_moderate(summary_id=summary.pk, reader=reader_of(writer), moderator=writer, decision="approve")
