import json
import uuid

import pytest

from tests.layers.event_world import IN_WEST, world

pytestmark = pytest.mark.django_db


def test_smoke(client):
    world()
    for path in [
        "/report/",
        "/report/follow/",
        "/public/",
        "/public/embed/",
        "/public/feed.json",
        "/public/feed.rss",
        "/api/resident/categories",
        "/api/public/month",
        "/api/public/cells",
        "/api/public/cases",
        f"/api/resident/place?lon={IN_WEST[0]}&lat={IN_WEST[1]}",
        "/api/resident/geocode?q=畅家巷1号",
        "/open311/v2/requests.json",
        "/open311/v2/services.json",
    ]:
        r = client.get(path)
        print(path, r.status_code, r.content[:300])
        assert r.status_code == 200, path
    c = client.get("/report/")
    token = c.cookies["csrftoken"].value
    body = {
        "client_id": str(uuid.uuid4()),
        "category": "municipal.streetlight",
        "description": "路灯坏了 13912345678",
        "source": "tap",
        "location": {"lon": IN_WEST[0], "lat": IN_WEST[1]},
        "phone": "13912345678",
    }
    r = client.post("/api/resident/reports", json.dumps(body), content_type="application/json")
    print(r.status_code, r.content[:300])
    assert r.status_code == 403
    r = client.post("/api/resident/reports", json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    print(r.status_code, json.dumps(r.json(), ensure_ascii=False)[:2000])
    assert r.status_code == 201
    t = r.json()["token"]
    r2 = client.post("/api/resident/reports", json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert r2.status_code == 200 and r2.json()["token"] == t
    r = client.get("/api/resident/case", HTTP_X_FOLLOW_TOKEN=t)
    print(r.status_code, json.dumps(r.json(), ensure_ascii=False)[:2000])
