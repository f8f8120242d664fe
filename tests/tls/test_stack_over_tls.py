"""The whole path over TLS with real handshakes: the simulator publishes over ``amqps`` (with a
client certificate), the consumer consumes over ``amqps`` and stores over ``rediss``, the API
reads back over ``rediss``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support import consuming, free_port, wait_until
from tests.tls.certs import WRONG_HOST
from tests.tls.conftest import Tls
from tests.tls.servers import Service

pytestmark = pytest.mark.integration


def _api_healthy(api: Service, url: str) -> Callable[[], bool]:
    def healthy() -> bool:
        assert api.process.poll() is None, api.stderr
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    return healthy


def test_a_simulated_reading_is_stored_and_read_back_over_tls(
    tls: Tls, start: Callable[..., Service]
) -> None:
    consumer = start(
        "ev_consumer", {**tls.amqp_env(), **tls.redis_env(), "SENSOR_TYPES": "battery"}
    )
    wait_until(consuming(tls.amqp_url, ["ev.sensor.battery"]), 30, "the consumer consuming")
    assert consumer.process.poll() is None, consumer.stderr

    prefix = f"tls{uuid.uuid4().hex[:6]}_"
    report = tls.logs / "report.json"
    simulator = start(
        "ev_simulator",
        tls.amqp_env(),
        *("--vehicles", "1", "--count", "3", "--rate", "0", "--seed", "5"),
        *("--types", "battery", "--alt-unit-ratio", "0", "--id-prefix", prefix),
        *("--report-json", str(report)),
    )
    assert simulator.wait(60) == 0, simulator.stderr
    published: dict[str, Any] = json.loads(report.read_text())
    assert published["complete"]
    [(sensor_id, types)] = published["sensors"].items()

    port = free_port()
    api_env = {**tls.redis_env(), "API_HOST": "127.0.0.1", "API_PORT": str(port)}
    api = start("ev_api", api_env)
    url = f"http://127.0.0.1:{port}"
    wait_until(_api_healthy(api, url), 30, "the API's /health over rediss")

    def stored() -> bool:
        answer = httpx.get(f"{url}/api/v1/sensor/{sensor_id}/battery", timeout=5)
        return answer.status_code == 200

    wait_until(stored, 30, "the reading stored and served")
    latest = httpx.get(f"{url}/api/v1/sensor/{sensor_id}/battery", timeout=5).json()
    assert latest["timestamp"] == types["battery"]["last"]
    assert latest["value"] == pytest.approx(types["battery"]["last_value"])
    assert "Traceback" not in consumer.stderr + api.stderr


def test_the_server_name_setting_verifies_a_broker_reached_under_another_name(
    tls: Tls, start: Callable[..., Service]
) -> None:
    """The wrong-host certificate is valid for WRONG_HOST only: reaching it at 127.0.0.1 with
    RABBITMQ_TLS_SERVER_NAME set to that name verifies (and without it fails, see the matrix)."""
    env = {**tls.amqp_env("wrong_host"), "RABBITMQ_TLS_SERVER_NAME": WRONG_HOST}
    simulator = start(
        "ev_simulator",
        env,
        *("--vehicles", "1", "--count", "2", "--rate", "0", "--declare-topology"),
        *("--types", "battery", "--alt-unit-ratio", "0"),
    )
    assert simulator.wait(60) == 0, simulator.stderr


def test_an_api_whose_tls_redis_is_down_still_starts_and_answers_503(
    tls: Tls, start: Callable[..., Service]
) -> None:
    port = free_port()
    down = {**tls.redis_env(), "REDIS_PORT": str(free_port()), "REDIS_SOCKET_TIMEOUT_S": "0.5"}
    api = start("ev_api", {**down, "API_HOST": "127.0.0.1", "API_PORT": str(port)})

    def answers() -> bool:
        assert api.process.poll() is None, api.stderr
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 503
        except httpx.TransportError:
            return False

    wait_until(answers, 30, "the API answering 503")
