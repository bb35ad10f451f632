"""Durable intake: the ``Idempotency-Key`` on POST /api/events and Open311 POST
requests (the first answer again, a 422 for another body, per user and endpoint, at least 24 h),
answers given only after the commit, and a lost database answered 503 with Retry-After through
the one error tree, with Django reconnecting afterwards."""

from __future__ import annotations

import datetime as dt
import json
import threading
from urllib.parse import urlencode

import psycopg2
import pytest
from django.contrib.auth.models import Group
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.authtoken.models import Token

from layers.errors import IdempotencyKeyReused
from layers.models import Event, IdempotencyKey, ReaderScope
from layers.services.idempotency import idempotency_keys_purge, idempotent_answer, request_digest
from mapserver import errors
from tests.worlds.events import IN_EAST, IN_WEST, world

KEY = "8e03978e-40d5-43e8-bc93-6894a57f9324"
UNAVAILABLE = {
    "error": {"code": "unavailable", "message": "The database is unavailable for the moment; retry shortly."}
}


@pytest.fixture
def area(db):
    return world()


def make_user(django_user_model, name: str, *groups: str):
    user = django_user_model.objects.create_user(name, f"{name}@example.org", "intake-password")
    ReaderScope.objects.create(user=user, level="city")
    for group in groups:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def api(client, django_user_model):
    client.force_login(make_user(django_user_model, "hotline-desk"))
    return client


def intake(**overrides) -> dict:
    """An intake body without an external id: only the Idempotency-Key can make a retry safe."""
    body = {
        "channel": "hotline",
        "category": "hazard.fire",
        "description": "楼道堆放杂物，堵塞消防通道",
        "location": {"lon": IN_WEST[0], "lat": IN_WEST[1]},
        "reporter": {"name": "张三丰", "phone": "13912345678"},
    }
    body.update(overrides)
    return body


def post(client, body, key: str | None = KEY, raw: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False)
    return client.post("/api/events", data, content_type="application/json", **headers)


def open311_post(client, fields: dict, key: str | None = KEY, fmt: str = "json"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(
        f"/open311/v2/requests.{fmt}", urlencode(fields), content_type="application/x-www-form-urlencoded", **headers
    )


# --- Idempotency-Key on /api/events ------------------------------------------------------------------


def test_a_retry_with_the_same_key_gets_the_first_answer(api, area):
    """Same key, same body: the stored first answer (status, body, Location) and no second event."""
    first = post(api, intake())
    second = post(api, intake())
    assert (first.status_code, second.status_code) == (201, 201)
    assert "Idempotent-Replay" not in first
    assert second["Idempotent-Replay"] == "true"
    assert second.json() == first.json()
    assert second["Location"] == first["Location"] == f"http://testserver/api/events/{first.json()['id']}"
    assert Event.objects.count() == 1
    stored = IdempotencyKey.objects.get()
    assert (stored.endpoint, stored.key, stored.status, stored.event_id) == (
        "events.create",
        KEY,
        201,
        first.json()["id"],
    )


def test_the_replay_is_the_first_answer_even_after_the_event_moved_on(api, area):
    """The stored answer is replayed as it was given, not re-read (the client learns what it missed)."""
    first = post(api, intake()).json()
    Event.objects.filter(pk=first["id"]).update(status="in_progress")
    assert post(api, intake()).json()["status"] == first["status"] == "assigned"


def test_the_same_body_written_in_another_key_order_is_the_same_request(api, area):
    body = intake()
    reordered = json.dumps(dict(reversed(list(body.items()))), ensure_ascii=False)
    first = post(api, body)
    second = post(api, None, raw=reordered)
    assert (second.status_code, second["Idempotent-Replay"]) == (201, "true")
    assert second.json()["id"] == first.json()["id"]


def test_the_quoted_form_of_the_key_is_the_same_key(api, area):
    """The IETF draft sends the key as a structured-field string: "…"."""
    first = post(api, intake())
    second = post(api, intake(), key=f'"{KEY}"')
    assert second["Idempotent-Replay"] == "true"
    assert second.json()["id"] == first.json()["id"]


def test_the_same_key_with_another_body_is_a_422(api, area):
    post(api, intake())
    response = post(api, intake(description="另一件事"))
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "idempotency_key_reused",
            "message": (
                f"Idempotency-Key: the key '{KEY}' was already used with a different "
                "request; send a new key for a new request, or the same body to retry"
            ),
            "parameter": "Idempotency-Key",
        }
    }
    assert Event.objects.count() == 1


def test_without_a_key_and_an_external_id_a_repeat_is_a_new_event(api, area):
    """What the key is for: the same report sent twice without one is two events."""
    assert post(api, intake(), key=None).status_code == 201
    assert post(api, intake(), key=None).status_code == 201
    assert Event.objects.count() == 2
    assert not IdempotencyKey.objects.exists()


def test_keys_are_per_user(client, django_user_model, area):
    """Two intake accounts may pick the same key: each gets its own event."""
    ids = []
    for name in ("desk-a", "desk-b"):
        client.force_login(make_user(django_user_model, name))
        response = post(client, intake())
        assert (response.status_code, "Idempotent-Replay" in response) == (201, False)
        ids.append(response.json()["id"])
    assert ids[0] != ids[1]
    assert IdempotencyKey.objects.filter(key=KEY).count() == 2


def test_a_refused_body_leaves_the_key_free(api, area):
    """A 400 stores nothing: the client fixes the body and retries with the same key."""
    refused = post(api, intake(category="hazard.meteor"))
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "category: unknown category 'hazard.meteor'"
    assert not IdempotencyKey.objects.exists()
    assert post(api, intake()).status_code == 201


def test_the_key_and_the_external_id_together(api, area):
    """An external id already stored answers 200 (replay by ticket); that answer is the key's."""
    first = post(api, intake(external_id="HX-1"), key="key-1")
    second = post(api, intake(external_id="HX-1"), key="key-2")
    third = post(api, intake(external_id="HX-1"), key="key-2")
    assert [r.status_code for r in (first, second, third)] == [201, 200, 200]
    assert [r.get("Idempotent-Replay") for r in (first, second, third)] == [None, "true", "true"]
    assert {r.json()["id"] for r in (first, second, third)} == {first.json()["id"]}
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "Idempotency-Key: must be 1 to 255 visible ASCII characters (a UUID, say), got ''"),
        ("k" * 256, f"Idempotency-Key: must be 1 to 255 visible ASCII characters (a UUID, say), got '{'k' * 40}'"),
        ("two words", "Idempotency-Key: must be 1 to 255 visible ASCII characters (a UUID, say), got 'two words'"),
        ('"', "Idempotency-Key: must be 1 to 255 visible ASCII characters (a UUID, say), got '\"'"),
        ('a"b', "Idempotency-Key: must be 1 to 255 visible ASCII characters (a UUID, say), got 'a\"b'"),
        ("键", "Idempotency-Key: must be 1 to 255 visible ASCII characters (a UUID, say), got 'é\\x94®'"),
    ],
)
def test_bad_keys_are_refused(api, area, key, message):
    response = post(api, intake(), key=key.encode("utf-8").decode("latin-1"))
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "bad_parameter", "message": message, "parameter": "Idempotency-Key"}}
    assert not Event.objects.exists()


def test_a_key_older_than_its_lifetime_counts_as_new(api, area, settings):
    settings.MINQING_IDEMPOTENCY_KEY_HOURS = 24
    first = post(api, intake()).json()
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(hours=24, minutes=1))
    again = post(api, intake(description="一天后同一个键"))
    assert (again.status_code, "Idempotent-Replay" in again) == (201, False)
    assert again.json()["id"] != first["id"]
    assert IdempotencyKey.objects.get().event_id == again.json()["id"]


def test_a_key_within_its_lifetime_is_kept(api, area):
    first = post(api, intake()).json()
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(hours=23, minutes=59))
    assert post(api, intake()).json()["id"] == first["id"]


def test_the_purge_deletes_only_keys_past_their_lifetime(api, area):
    post(api, intake(), key="old")
    post(api, intake(), key="young")
    now = timezone.now()
    IdempotencyKey.objects.filter(key="old").update(created_at=now - dt.timedelta(hours=25))
    IdempotencyKey.objects.filter(key="young").update(created_at=now - dt.timedelta(hours=23))
    assert idempotency_keys_purge(now=now) == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["young"]


def test_the_purge_command_says_what_it_deleted(api, area, capsys):
    post(api, intake(), key="old")
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(days=3))
    call_command("purge_idempotency_keys")
    assert capsys.readouterr().out == "deleted 1 idempotency key(s) older than 24 h\n"
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize(("hours", "ok"), [("24", True), ("23.5", False), ("nan", False)])
def test_the_key_lifetime_is_at_least_a_day(hours, ok, monkeypatch):
    import importlib

    import settings.base as base

    monkeypatch.setenv("MINQING_IDEMPOTENCY_KEY_HOURS", hours)
    if ok:
        assert importlib.reload(base).MINQING_IDEMPOTENCY_KEY_HOURS == 24
    else:
        from django.core.exceptions import ImproperlyConfigured

        with pytest.raises(ImproperlyConfigured) as raised:
            importlib.reload(base)
        assert str(raised.value) == f"MINQING_IDEMPOTENCY_KEY_HOURS must be at least 24 (hours), got {float(hours):g}"
    monkeypatch.delenv("MINQING_IDEMPOTENCY_KEY_HOURS")
    importlib.reload(base)


# --- Idempotency-Key on Open311 POST -------------------------------------------------------------------


@pytest.fixture
def hotline(client, django_user_model, area):
    client.force_login(make_user(django_user_model, "hotline-system", "intake:hotline"))
    return client


FORM = {"service_code": "hazard.fire", "lat": IN_EAST[1], "long": IN_EAST[0], "description": "配电箱冒烟"}


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_open311_retry_with_the_same_key_gets_the_first_answer(hotline, fmt):
    first = open311_post(hotline, FORM, fmt=fmt)
    second = open311_post(hotline, FORM, fmt=fmt)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second["Idempotent-Replay"] == "true"
    assert second.content == first.content
    assert second["Content-Type"] == first["Content-Type"]
    event = Event.objects.get()
    assert (event.channel, event.external_id) == ("hotline", "")
    assert IdempotencyKey.objects.get().endpoint == "open311.requests"


def test_open311_same_key_with_another_form_is_a_422_in_georeport_shape(hotline):
    open311_post(hotline, FORM)
    response = open311_post(hotline, {**FORM, "description": "另一件事"})
    assert response.status_code == 422
    assert response.json() == [
        {
            "code": 422,
            "description": (
                f"Idempotency-Key: the key '{KEY}' was already used with a different "
                "request; send a new key for a new request, or the same body to retry"
            ),
        }
    ]


def test_open311_the_api_key_is_not_part_of_the_request(client, django_user_model, area):
    """A rotated token still names the same request: the credential is left out of the digest."""
    user = make_user(django_user_model, "app-gateway")
    old = Token.objects.create(user=user)
    first = open311_post(client, {**FORM, "api_key": old.key})
    old.delete()
    new = Token.objects.create(user=user)
    second = open311_post(client, {**FORM, "api_key": new.key})
    assert second["Idempotent-Replay"] == "true"
    assert second.json() == first.json()


def test_the_same_key_on_json_and_open311_are_two_requests(hotline):
    """Keys are per endpoint: a GeoReport form never replays a JSON intake's answer."""
    assert post(hotline, intake()).status_code == 201
    assert open311_post(hotline, FORM).status_code == 200
    assert Event.objects.count() == 2


# --- the service: racing retries ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_racing_retry_waits_for_the_first_and_replays_it(django_user_model):
    """The second request with the key blocks on the unique index until the first commits, then
    gets its answer; the work runs once."""
    owner = django_user_model.objects.create_user("racer")
    inside, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}
    runs = []

    def slow() -> tuple[int, object, int | None]:
        runs.append("first")
        inside.set()
        assert release.wait(10)
        return 201, {"answer": 1}, None

    def first() -> None:
        try:
            results["first"] = idempotent_answer(owner_id=owner.pk, endpoint="t", key="k", digest="d", produce=slow)
        finally:
            connection.close()

    def second() -> None:
        try:
            results["second"] = idempotent_answer(
                owner_id=owner.pk, endpoint="t", key="k", digest="d", produce=lambda: runs.append("second")
            )
        finally:
            connection.close()

    a = threading.Thread(target=first)
    a.start()
    assert inside.wait(10)
    b = threading.Thread(target=second)
    b.start()
    b.join(0.5)
    assert b.is_alive(), "the retry must wait for the first request's commit"
    release.set()
    a.join(10)
    b.join(10)
    assert runs == ["first"]
    assert results["first"].replayed is False
    assert (results["second"].status, results["second"].body, results["second"].replayed) == (201, {"answer": 1}, True)


@pytest.mark.django_db
def test_the_service_refuses_another_digest(django_user_model):
    owner = django_user_model.objects.create_user("svc")
    idempotent_answer(owner_id=owner.pk, endpoint="t", key="k", digest="a", produce=lambda: (201, {}, None))
    with pytest.raises(IdempotencyKeyReused):
        idempotent_answer(owner_id=owner.pk, endpoint="t", key="k", digest="b", produce=lambda: (201, {}, None))


def test_request_digest_is_canonical():
    assert request_digest({"a": [1, "兰"], "b": None}) == request_digest({"b": None, "a": [1, "兰"]})
    assert request_digest({"a": "1"}) != request_digest({"a": 1})


# --- 201 only after the commit ------------------------------------------------------------------------


def _visible_elsewhere(sql: str, params: list) -> list[tuple]:
    """Rows as another session sees them: only what was committed."""
    settings = connection.settings_dict
    other = psycopg2.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        host=settings["HOST"],
        port=settings["PORT"],
    )
    try:
        with other.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", [KEY, None])
def test_a_201_names_an_event_another_session_already_sees(client, django_user_model, key):
    """When the 201 is sent the event (and its key) are committed: another connection reads them."""
    world()
    client.force_login(make_user(django_user_model, "commit-check"))
    response = post(client, intake(), key=key)
    assert response.status_code == 201
    event_id = response.json()["id"]
    assert _visible_elsewhere("SELECT id FROM layers_event WHERE id = %s", [event_id]) == [(event_id,)]
    keys = _visible_elsewhere("SELECT event_id, status FROM layers_idempotencykey WHERE key = %s", [KEY])
    assert keys == ([(event_id, 201)] if key else [])


COMMIT_UNKNOWN = {
    "error": {
        "code": "commit_unknown",
        "message": "the database went away while saving: the report may have been "
        "stored; send it again with the same Idempotency-Key, or the same channel and external_id, to get "
        "the stored one, never a second",
    }
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("key", "external_id"),
    [(KEY, None), (None, "H-20260501-7"), (KEY, "H-20260501-8")],
    ids=["key", "external", "both"],
)
def test_a_commit_lost_on_the_wire_is_not_answered_as_if_nothing_was_stored(
    client, django_user_model, monkeypatch, key, external_id
):
    """The review found reports answered 503 that had in fact been stored: the connection broke
    after PostgreSQL committed and before it said so. That answer now says the report may have
    been stored and how to get it; the retry gets the stored one, never a second."""
    world()
    client.force_login(make_user(django_user_model, "desk"))
    body = intake(**({"external_id": external_id} if external_id else {}))
    real_commit = connection._commit

    def commit_then_lose_the_answer():
        real_commit()
        # As Django's wrapper hands on the driver's error for a connection that broke.
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(connection, "_commit", commit_then_lose_the_answer)
    lost = post(client, body, key=key)
    monkeypatch.undo()
    assert lost.status_code == 503
    assert lost["Retry-After"] == "2"
    assert lost.json() == COMMIT_UNKNOWN
    assert Event.objects.count() == 1  # stored, as the answer warned
    retried = post(client, body, key=key)
    assert retried.status_code in (200, 201)
    assert retried["Idempotent-Replay"] == "true"
    assert retried.json()["id"] == Event.objects.get().pk
    assert Event.objects.count() == 1


# --- a lost database: 503 with Retry-After, never a 500 -------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.mapserver.urls_dbloss")
@pytest.mark.parametrize(
    ("path", "json_body"), [("/api/test-db-loss", True), ("/api/test-db-loss-plain", True), ("/db-loss/", False)]
)
def test_a_connection_lost_mid_request_is_a_retryable_503(client, path, json_body, caplog):
    """The server ends our session while the view runs (as a restart does): 503 and Retry-After,
    the driver's message only in the log; the next request reconnects and succeeds."""
    try:
        response = client.get(path)
        assert response.status_code == 503
        assert response["Retry-After"] == "2"
        if json_body:
            assert response.json() == UNAVAILABLE
        else:
            assert response["Content-Type"].startswith("text/html")
            assert "The database is unavailable for the moment; retry shortly." in response.content.decode()
        assert "(OperationalError: server closed the connection unexpectedly" in caplog.text
        assert "server closed" not in response.content.decode()
        # What a WSGI server does at each request's start: drop a connection that failed (the
        # test client leaves this out), so the next request opens a new one.
        signals.request_started.send(sender=WSGIHandler)
        assert client.get("/api/test-db-alive").json() == {"alive": True}
    finally:
        connection.close()


@pytest.fixture
def unreachable_database(transactional_db, tmp_path):
    """The database's socket directory points nowhere: every connect fails, as while PostgreSQL
    restarts. Restored (and reconnected) afterwards."""
    saved = connection.settings_dict["HOST"]
    connection.close()
    connection.settings_dict["HOST"] = str(tmp_path)
    yield
    connection.close()
    connection.settings_dict["HOST"] = saved


@pytest.fixture
def token(django_user_model, transactional_db) -> str:
    world()
    user = make_user(django_user_model, "token-holder", "intake:hotline")
    return Token.objects.create(user=user).key


def test_intake_while_the_database_is_down_is_a_503(client, token, unreachable_database, settings):
    settings.MINQING_RETRY_AFTER_SECONDS = 5
    response = client.post(
        "/api/events",
        json.dumps(intake()),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
        HTTP_IDEMPOTENCY_KEY=KEY,
    )
    assert (response.status_code, response["Retry-After"]) == (503, "5")
    assert response.json() == UNAVAILABLE


@pytest.mark.parametrize(
    ("fmt", "content"),
    [
        ("json", '[{"code": 503, "description": "The database is unavailable for the moment; retry shortly."}]'),
        (
            "xml",
            "<?xml version='1.0' encoding='utf-8'?>\n<errors><error><code>503</code>"
            "<description>The database is unavailable for the moment; retry shortly.</description></error></errors>",
        ),
    ],
)
def test_open311_while_the_database_is_down_is_a_georeport_503(client, token, unreachable_database, fmt, content):
    response = client.post(
        f"/open311/v2/requests.{fmt}",
        urlencode({**FORM, "api_key": token}),
        content_type="application/x-www-form-urlencoded",
    )
    assert (response.status_code, response["Retry-After"]) == (503, "2")
    assert response.content.decode() == content


def test_the_500_handler_answers_a_lost_database_with_a_503():
    """A database error outside a view (a session saved by a middleware) reaches handler500:
    still a retryable 503, not a 500."""
    from django.db import InterfaceError, OperationalError

    for exception in (OperationalError("server closed the connection unexpectedly"), InterfaceError("closed")):
        request = RequestFactory().get("/api/events")
        try:
            raise exception
        except type(exception):
            response = errors.server_error(request)
        assert (response.status_code, response["Retry-After"]) == (503, "2")
        assert json.loads(response.content) == UNAVAILABLE


# --- the intake answer is what a read-back gives -------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        intake(),
        intake(location={"lon": IN_EAST[0], "lat": IN_EAST[1], "crs": "gcj02"}),
        intake(location=None, address="火星市不存在路1号"),
        intake(category="consultation", description="咨询一下办事流程"),
        intake(category="dispute.neighbour", description="噪音 燃气 漏水"),
    ],
    ids=["located", "gcj02", "unlocated", "joint", "keywords"],
)
def test_the_intake_answer_is_the_event_as_read_back(client, django_user_model, area, body):
    """The 201 body is built from the instance just written (no read-back): it must equal what
    GET /api/events/<id> answers for the same reader."""
    user = make_user(django_user_model, "reader", "command_center")
    client.force_login(user)
    created = post(client, body)
    assert created.status_code == 201
    read = client.get(f"/api/events/{created.json()['id']}")
    assert read.status_code == 200
    assert created.json() == read.json()


@pytest.mark.parametrize("api_key", ["\x00", "a\x00b", "k" * 41])
def test_an_api_key_that_cannot_be_a_token_is_a_401_not_a_500(chinese_client, area, api_key):
    """Found by the fuzzer: a NUL in api_key reached the token query, which PostgreSQL refuses."""
    from django.utils import translation

    client = chinese_client
    response = client.get("/open311/v2/services.json", {"api_key": api_key})
    assert response.status_code == 401
    with translation.override("zh-hans"):
        # The same words as for any unknown token (DRF's message, in the project's translation).
        invalid = translation.gettext("Invalid token.")
    assert response.json() == [{"code": 401, "description": invalid}]
    assert client.get("/open311/v2/services.json", {"api_key": "unknown"}).json() == response.json()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"service_code": "hazard\x00"}, "service_code: must not contain NUL (\\u0000) characters"),
        ({"status": "open", "service_code": "a\x00"}, "service_code: must not contain NUL (\\u0000) characters"),
    ],
)
def test_a_nul_in_a_text_parameter_is_a_400(api, area, query, message):
    response = api.get("/open311/v2/requests.json", query)
    assert response.status_code == 400
    assert response.json() == [{"code": 400, "description": message}]


def test_a_nul_in_an_intake_field_is_a_400(api, area):
    response = post(api, intake(description="楼道\x00堆物"))
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "bad_parameter",
        "message": "description: must not contain NUL (\\u0000) characters",
        "parameter": "description",
    }


@pytest.mark.parametrize("accept", ["text/xml", "application/xml", "image/png"])
def test_open311_answers_in_the_extensions_format_whatever_the_accept_header(hotline, accept):
    """The path's extension picks the format: a GeoReport client asking for XML by Accept gets
    it, not DRF's 406."""
    response = hotline.get("/open311/v2/services.xml", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml; charset=utf-8"


def _drf_text(exception) -> str:
    """DRF's message for ``exception`` as a client with no Accept-Language reads it."""
    from django.utils import translation

    with translation.override("zh-hans"):
        return str(exception.detail)


def test_drf_refusals_take_the_error_trees_shape(api, area):
    """Found by the fuzzer: DRF's own refusals answered {"detail": …}; now the tree's shape."""
    from rest_framework import exceptions

    put = api.put("/api/events", "{}", content_type="application/json")
    assert put.status_code == 405
    assert put.json() == {
        "error": {"code": "method_not_allowed", "message": _drf_text(exceptions.MethodNotAllowed("PUT"))}
    }
    png = api.get("/api/events", HTTP_ACCEPT="image/png")
    assert png.status_code == 406
    assert png.json() == {"error": {"code": "not_acceptable", "message": _drf_text(exceptions.NotAcceptable())}}


def test_open311_refuses_a_json_body_with_a_georeport_415(hotline):
    from rest_framework import exceptions

    response = hotline.post("/open311/v2/requests.json", "{}", content_type="application/json")
    assert response.status_code == 415
    expected = _drf_text(exceptions.UnsupportedMediaType("application/json"))
    assert response.json() == [{"code": 415, "description": expected}]
