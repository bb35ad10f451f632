"""Unknown paths and unexpected failures answer through the one error tree: JSON under the API
prefixes, a page elsewhere, and never a traceback."""

from __future__ import annotations

import json
import logging
import re

import pytest
from django.test import Client, RequestFactory

from mapserver import errors

pytestmark = pytest.mark.django_db

HIDDEN = "db-host=10.0.0.7"


@pytest.mark.parametrize(
    "path", ["/api/no-such-thing", "/api/whoami/extra", "/open311/v2/nothing.json", "/ogc/none", "/tiles/x/1/2"]
)
def test_unknown_machine_path_is_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "not_found", "message": f"No such path: {path}"}}


def test_unknown_page_is_an_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "<h1>404</h1>" in html
    assert "No such path: /no-such-page/" in html
    assert '<a href="/">返回首页 Home</a>' in html


def test_json_404_when_the_client_asks_for_json(client):
    response = client.get("/no-such-page/", HTTP_ACCEPT="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def raise_and_handle(path: str, **headers):
    request = RequestFactory().get(path, **headers)
    try:
        raise RuntimeError(f"internal detail: {HIDDEN}")
    except RuntimeError:
        # Django calls handler500 inside its except block; so does this test.
        return errors.server_error(request)


def test_handler500_answers_json_for_the_api_without_a_traceback(caplog):
    with caplog.at_level(logging.ERROR, logger="minqing.errors"):
        response = raise_and_handle("/api/events")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    ref = body["error"]["reference"]
    assert re.fullmatch(r"[0-9a-f]{12}", ref)
    assert body == {
        "error": {
            "code": "server_error",
            "message": f"Internal error: tell the administrator the reference {ref}.",
            "reference": ref,
        }
    }
    assert "Traceback" not in response.content.decode()
    assert HIDDEN not in response.content.decode()
    # The log keeps what the client does not see, under the same reference.
    (record,) = [r for r in caplog.records if r.name == "minqing.errors"]
    assert ref in record.getMessage()
    assert HIDDEN in caplog.text


def test_handler500_answers_a_page_elsewhere():
    response = raise_and_handle("/some-page/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "<h1>500</h1>" in html
    assert "Internal error: tell the administrator the reference" in html
    assert HIDDEN not in html and "Traceback" not in html


@pytest.mark.urls("tests.mapserver.urls_failing")
@pytest.mark.parametrize(("path", "is_api"), [("/api/test-failure", True), ("/page-failure/", False)])
def test_a_failing_view_ends_in_the_500_handler(path, is_api, caplog):
    """Through the whole stack (DEBUG off): an unexpected exception reaches handler500."""
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.CRITICAL, logger="django.request"):
        response = client.get(path)
    assert response.status_code == 500
    assert HIDDEN not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    if is_api:
        assert response.json()["error"]["code"] == "server_error"
    else:
        assert "<h1>500</h1>" in response.content.decode()


def test_an_unknown_api_path_is_json_even_with_debug_on(client, settings):
    """With DEBUG on Django would answer an unmatched URL with its HTML debug page; the API still gets JSON."""
    settings.DEBUG = True
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such path: /api/no-such-thing"}}


def test_the_web_layers_errors_and_the_services_share_one_root(caplog):
    """``MinqingError`` derives from the services' ``DomainError``: the renderer takes either with
    the same body, and a service's error may carry a logged ``detail`` the client never reads."""
    from layers.errors import DomainError, InvalidInput

    assert issubclass(errors.MinqingError, DomainError)
    request = RequestFactory().get("/api/events")
    ours, theirs = errors.BadParameter("bbox", "four numbers"), InvalidInput("bbox", "four numbers")
    assert ours.as_dict() == theirs.as_dict()
    assert errors.render_error(request, ours).content == errors.render_error(request, theirs).content
    with caplog.at_level(logging.WARNING, logger="minqing.errors"):
        response = errors.render_error(request, DomainError("refused", detail=HIDDEN))
    assert json.loads(response.content) == {"error": {"code": "bad_request", "message": "refused"}}
    assert HIDDEN in caplog.text
