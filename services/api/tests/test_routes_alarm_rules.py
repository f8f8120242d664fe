"""GET/PUT /api/v1/alarm-rules against the real Redis: admin keys, precedence over the file,
one-line 422 details naming rule and field, OpenAPI examples."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ev_api.auth import ADMIN_API_OFF, ADMIN_KEY_NEEDED
from ev_schemas import ALARM_RULES_EXAMPLE, AlarmRulesDocument, AlarmRuleSet, default_catalogue

URL = "/api/v1/alarm-rules"
EXAMPLE_FILE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "alarm-rules.yaml"
ADMIN = {"X-API-Key": "root"}
USER = {"X-API-Key": "alpha"}
EXAMPLE = AlarmRuleSet.checked(ALARM_RULES_EXAMPLE, default_catalogue())


@pytest.fixture
def admin_client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(api_keys="alpha", api_admin_keys="root, spare")


def test_without_a_file_or_a_put_there_are_no_rules(admin_client: TestClient) -> None:
    response = admin_client.get(URL, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "version": AlarmRuleSet().version,
        "source": "none",
        "rules": [],
        "stale": [],
    }


def test_the_file_is_the_default_until_a_put(make_client: Callable[..., TestClient]) -> None:
    client = make_client(
        api_keys="alpha", api_admin_keys="root", alarm_rules_file=str(EXAMPLE_FILE)
    )
    body = client.get(URL, headers=ADMIN).json()
    assert body["source"] == "file"
    assert [rule["id"] for rule in body["rules"]][:2] == ["battery-low", "pack-hot"]
    assert body["rules"][1]["for"] == "1m"
    put = client.put(URL, headers=ADMIN, json=ALARM_RULES_EXAMPLE)
    assert put.status_code == 200, put.text
    after = client.get(URL, headers=ADMIN).json()
    assert after == put.json()
    assert after["source"] == "api"
    assert after["version"] == EXAMPLE.version
    assert after["version"] != body["version"]


def test_a_put_round_trips_and_replaces_the_whole_set(admin_client: TestClient) -> None:
    put = admin_client.put(URL, headers=ADMIN, json=ALARM_RULES_EXAMPLE)
    assert put.status_code == 200, put.text
    document = AlarmRulesDocument.model_validate(put.json())
    assert document.version == EXAMPLE.version
    assert document.rules == EXAMPLE.rules
    assert put.json()["stale"] == [
        {
            "id": "battery-silent",
            "sensor_type": "battery",
            "sensor_prefix": "",
            "severity": "warning",
            "description": "",
            "stale_after": "5m",
        }
    ]
    # The answer's version and source are not part of a rule set.
    echoed = admin_client.put(URL, headers=ADMIN, json=put.json())
    assert echoed.status_code == 422
    assert echoed.json()["detail"].startswith("version: Extra inputs are not permitted")
    again = admin_client.put(URL, headers=ADMIN, json=EXAMPLE.canonical())
    assert again.json()["version"] == EXAMPLE.version
    emptied = admin_client.put(URL, headers=ADMIN, json={"stale": []})
    assert emptied.json()["rules"] == []
    assert admin_client.get(URL, headers=ADMIN).json()["version"] == AlarmRuleSet().version


def test_a_second_admin_key_works_too(admin_client: TestClient) -> None:
    assert admin_client.get(URL, headers={"X-API-Key": "spare"}).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_keys(admin_client: TestClient, method: str) -> None:
    def call(headers: dict[str, str]) -> Any:
        return admin_client.request(method, URL, headers=headers, json=ALARM_RULES_EXAMPLE)

    missing = call({})
    assert (missing.status_code, missing.json()) == (401, {"detail": "missing X-API-Key header"})
    assert missing.headers["WWW-Authenticate"] == "ApiKey"
    wrong = call({"X-API-Key": "guess"})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "invalid API key"})
    user = call(USER)
    assert (user.status_code, user.json()) == (403, {"detail": ADMIN_KEY_NEEDED})
    assert call(ADMIN).status_code == 200


def test_an_admin_key_is_accepted_by_the_other_routes(admin_client: TestClient) -> None:
    assert admin_client.get("/api/v1/sensors/count", headers=ADMIN).status_code == 200
    assert admin_client.get("/api/v1/sensors/count", headers=USER).status_code == 200
    assert admin_client.get("/api/v1/sensors/count").status_code == 401


@pytest.mark.parametrize("api_keys", ["", "alpha"])
def test_without_admin_keys_the_rules_api_is_off(
    make_client: Callable[..., TestClient], api_keys: str
) -> None:
    client = make_client(api_keys=api_keys)
    for headers in ({}, USER):
        response = client.get(URL, headers=headers)
        assert (response.status_code, response.json()) == (403, {"detail": ADMIN_API_OFF})
    assert client.put(URL, headers=USER, json={}).status_code == 403


def test_admin_keys_without_api_keys_leave_the_other_routes_open(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(api_admin_keys="root")
    assert client.get("/api/v1/sensors/count").status_code == 200
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=USER).json() == {"detail": "invalid API key"}
    assert client.get(URL, headers=ADMIN).status_code == 200


def rule(**fields: Any) -> dict[str, Any]:
    return {"id": "pack-hot", "sensor_type": "temperature", **fields}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {"rules": [rule(above=60, clear_below=65)]},
            "rules[0] 'pack-hot': clear_below (65) must be <= above (60)",
        ),
        (
            {"rules": [rule(above=60, readings=0)]},
            "rules[0] 'pack-hot': readings: Input should be greater than or equal to 1",
        ),
        (
            {"rules": [rule(above="hot")]},
            "rules[0] 'pack-hot': above: Input should be a valid number",
        ),
        (
            {"rules": [rule(above=60, sensor_type="warp")]},
            "rules[0] 'pack-hot': sensor_type: unknown sensor type 'warp'; configured: battery,",
        ),
        (
            {"rules": [rule(above=1)], "stale": [rule(stale_after="1m")]},
            "stale[0] 'pack-hot': id: already used by rules[0]",
        ),
        (
            {"stale": [rule(stale_after="soon")]},
            "stale[0] 'pack-hot': stale_after: must be a duration",
        ),
        ({"rulez": []}, "rulez: Extra inputs are not permitted"),
        ([], "the request body must be a JSON object with `rules` and/or `stale` lists"),
    ],
)
def test_invalid_sets_are_422_naming_rule_and_field(
    admin_client: TestClient, body: Any, detail: str
) -> None:
    admin_client.put(URL, headers=ADMIN, json=ALARM_RULES_EXAMPLE)
    response = admin_client.put(URL, headers=ADMIN, json=body)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], str)
    assert response.json()["detail"].startswith(detail)
    # Nothing was stored.
    assert admin_client.get(URL, headers=ADMIN).json()["version"] == EXAMPLE.version


def test_a_body_that_is_not_json(admin_client: TestClient) -> None:
    response = admin_client.put(
        URL, headers={**ADMIN, "Content-Type": "application/json"}, content=b"{"
    )
    assert response.json() == {"detail": "the request body is not valid JSON"}
    missing = admin_client.put(URL, headers=ADMIN)
    assert missing.status_code == 422
    assert missing.json()["detail"].startswith("the request body must be a JSON object")


def test_several_problems_in_one_detail(admin_client: TestClient) -> None:
    body = {"rules": [rule(above=1, severity="loud"), rule(id="b", below=1, readings=0)]}
    detail = admin_client.put(URL, headers=ADMIN, json=body).json()["detail"]
    assert "rules[0] 'pack-hot': severity" in detail
    assert "rules[1] 'b': readings" in detail


def test_the_same_rate_limit_as_other_routes(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_keys="alpha", api_admin_keys="root", rate_limit_per_minute=2)
    assert [client.get(URL, headers=ADMIN).status_code for _ in range(3)] == [200, 200, 429]
    refused = client.get(URL, headers=ADMIN)
    assert "Retry-After" in refused.headers


def test_openapi_documents_both_routes_with_examples(admin_client: TestClient) -> None:
    spec = admin_client.get("/openapi.json").json()
    path = spec["paths"][URL]
    assert set(path) == {"get", "put"}
    for operation in path.values():
        assert {"401", "403", "503"} <= set(operation["responses"])
        assert {"AdminKey": []} in operation["security"]
        assert operation["summary"]
    body = path["put"]["requestBody"]["content"]["application/json"]
    assert body["examples"]["rules"]["value"] == ALARM_RULES_EXAMPLE
    assert "422" in path["put"]["responses"]
    document = spec["components"]["schemas"]["AlarmRulesDocument"]
    assert document["examples"][0]["rules"] == ALARM_RULES_EXAMPLE["rules"]
    assert json.dumps(spec).count("AdminKey") >= 2
