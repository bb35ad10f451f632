"""The OpenAPI schema documents every API view without a warning."""

import pytest
import yaml
from django.core.management import call_command


@pytest.mark.django_db
def test_the_schema_validates_without_warnings(tmp_path):
    """drf-spectacular fails on a view it cannot describe; the generated file is valid OpenAPI 3."""
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert schema["openapi"].startswith("3.")
    assert {"/api/whoami", "/api/events", "/api/locate", "/api/geocode"} <= set(schema["paths"])


def test_the_schema_is_public(client):
    """Intake systems read the schema before they hold a token."""
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/events" in response.content
