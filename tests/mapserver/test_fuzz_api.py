"""Fuzzing (issue 6 §6): schemathesis generates requests from the OpenAPI schema that
``/api/schema/`` serves (the JSON API and the Open311 GeoReport endpoints), valid and invalid,
and sends them through the project's WSGI application as an authenticated user (a token).
Every answer must be free of server errors (no 5xx) and conform to the schema: a declared
status, a declared media type, a body that validates against the declared shape (the error
shapes included, declared once for every operation by ``mapserver.schema.error_responses``).

Bounded: a fixed number of examples per operation, derandomised so that a run is repeatable;
the whole run takes about a minute."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from layers.taxonomy import taxonomy_seed
from tests.layers.event_world import report

from .conftest import EAST_POINT, WEST_POINT

#: Generated requests per operation (each operation also gets schemathesis' coverage cases).
EXAMPLES = 40

#: What every answer must satisfy: no server error, and the schema's status codes, media types,
#: headers and body shapes. (Checks that a schema-valid request is *accepted* would need every
#: constraint of every parameter in the schema; the API refuses more than it declares, with 400s.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_schema(db, city, settings, tmp_path):
    """The schema as served, loaded through the WSGI application, with data to find: the tiny
    city, the taxonomy and an event in each small grid."""
    settings.MEDIA_ROOT = tmp_path
    taxonomy_seed()
    report(at=WEST_POINT, external_id="FUZZ-1")
    report(at=EAST_POINT, external_id="FUZZ-2", category="dispute.neighbour", description="邻居噪音")
    # The WSGI handler closes connections between requests as a server does; inside the test's
    # transaction that would lose the data, so it is switched off as Django's test client does.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(django_user_model) -> str:
    """A superuser's token: every operation's authenticated paths are reachable."""
    user = django_user_model.objects.create_superuser("fuzzer", "fuzzer@example.org", "fuzzer-password")
    return Token.objects.create(user=user).key


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_schema(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"})


def test_the_fuzzed_schema_covers_the_api_and_open311(api_schema):
    """The run above reaches the JSON API and GeoReport alike (a schema that lost them would
    make the fuzzing vacuous)."""
    operations = {f"{op.ok().method.upper()} {op.ok().path}" for op in api_schema.get_all_operations()}
    assert {
        "POST /api/events",
        "GET /api/events/{event_id}",
        "POST /api/events/{event_id}/actions",
        "GET /open311/v2/services.{fmt}",
        "GET /open311/v2/requests.{fmt}",
        "POST /open311/v2/requests.{fmt}",
        "GET /open311/v2/requests/{id}.{fmt}",
    } <= operations


def test_every_operation_declares_the_error_answers(client):
    """One hook declares the error tree's shapes on every operation: JSON errors for the API,
    GeoReport's list for Open311, Retry-After on 429 and 503; a view's own declaration stays."""
    document = client.get("/api/schema/", {"format": "json"}).json()
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("400", "401", "403", "404", "405", "406", "415", "422", "429", "503"):
                assert status in responses, (method, path, status)
            media = responses["503"]["content"]
            if path.startswith("/open311/"):
                assert media["application/json"]["schema"] == {"$ref": "#/components/schemas/GeoReportErrors"}
                assert media["text/xml"]["schema"]["type"] == "string"
            else:
                assert media == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            assert responses["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
            assert "Retry-After" in responses["429"]["headers"]
    # A view's own narrower declaration is kept (the events' 409 names transitions).
    conflict = document["paths"]["/api/events/{event_id}/actions"]["post"]["responses"]["409"]
    assert conflict["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorAnswer"}
    assert conflict["description"] == (
        "error.message names the field (400), the current status and allowed actions (409)"
    )
