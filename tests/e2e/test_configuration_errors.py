"""A bad value for a shared variable stops every service that reads it the same way: exit status
2 and one line on stderr, ``<program>: invalid configuration: <reason>``, the reason identical
for all of them (each variable is declared once, in ev-service's groups and mixins)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ev_service.variables import installed_services, variables

PROGRAMS = {
    "consumer": ("ev-consumer", [sys.executable, "-m", "ev_consumer"]),
    "api": ("ev-api", [sys.executable, "-m", "ev_api"]),
    "simulator": ("ev-simulator", [sys.executable, "-m", "ev_simulator", "--count", "1"]),
}
MISSING = "/nonexistent/ev-test.pem"
# A bad value for each shared variable that can be bad, and what the reason must say.
BAD_VALUES = {
    "REDIS_PORT": ("70000", "REDIS_PORT: Input should be less than or equal to 65535"),
    "REDIS_DB": ("-1", "REDIS_DB: Input should be greater than or equal to 0"),
    "REDIS_KEY_PREFIX": ("has space", "REDIS_KEY_PREFIX: key prefix"),
    "REDIS_CLUSTER": ("maybe", "REDIS_CLUSTER: Input should be a valid boolean"),
    "REDIS_SOCKET_TIMEOUT_S": ("0", "REDIS_SOCKET_TIMEOUT_S: Input should be greater than 0"),
    "REDIS_RETRIES": ("9", "REDIS_RETRIES: Input should be less than or equal to 5"),
    "REDIS_TLS": ("maybe", "REDIS_TLS: Input should be a valid boolean"),
    "REDIS_TLS_CA_FILE": (MISSING, "REDIS_TLS_CA_FILE: Path does not point to a file"),
    "REDIS_TLS_CERT_FILE": (MISSING, "REDIS_TLS_CERT_FILE: Path does not point to a file"),
    "REDIS_TLS_KEY_FILE": (MISSING, "REDIS_TLS_KEY_FILE: Path does not point to a file"),
    "REDIS_TLS_INSECURE": ("true", "REDIS_TLS_* settings need REDIS_TLS=true"),
    "RABBITMQ_PORT": ("0", "RABBITMQ_PORT: Input should be greater than or equal to 1"),
    "RABBITMQ_URLS": ("http://broker/", "not an AMQP URL"),
    "RABBITMQ_HEARTBEAT_S": ("0", "RABBITMQ_HEARTBEAT_S: Input should be greater than or equal"),
    "RABBITMQ_TLS_CA_FILE": (MISSING, "TLS settings need amqps:// URLs"),
    "RABBITMQ_TLS_CERT_FILE": (MISSING, "a client certificate needs both cert_file and key_file"),
    "RABBITMQ_TLS_KEY_FILE": (MISSING, "a client certificate needs both cert_file and key_file"),
    "RABBITMQ_TLS_SERVER_NAME": (" ", "server_name must not be empty"),
    "LOG_LEVEL": ("chatty", "LOG_LEVEL: Input should be"),
    "LOG_FORMAT": ("xml", "LOG_FORMAT: Input should be"),
    "HISTORY_RETENTION_S": ("0", "HISTORY_RETENTION_S: Input should be greater than 0"),
    "SENSOR_TYPES": ("battery,warp_drive", "SENSOR_TYPES: unknown sensor type(s) warp_drive"),
    "DELIVERY_LIMIT": ("0", "DELIVERY_LIMIT: Input should be greater than or equal to 1"),
    "ALARM_RULES_FILE": (
        "/nonexistent/rules.yaml",
        "ALARM_RULES_FILE: /nonexistent/rules.yaml: cannot read: No such file",
    ),
}
# Free text: no value of theirs is invalid.
ANY_VALUE = {"REDIS_HOST", "REDIS_PASSWORD", "RABBITMQ_HOST", "RABBITMQ_USER", "RABBITMQ_PASS"}
ANY_VALUE |= {"RABBITMQ_VHOST"}

VARIABLES = variables(installed_services())
NAMES = {variable.name for variable in VARIABLES}
SHARED = {variable.name: list(variable.defaults) for variable in VARIABLES if variable.rank < 2}


def test_every_shared_variable_has_a_bad_value_here() -> None:
    assert set(SHARED) - ANY_VALUE == set(BAD_VALUES)
    assert all(len(services) >= 2 for services in SHARED.values())


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_a_bad_shared_value_stops_each_service_with_the_same_line(name: str) -> None:
    value, expected = BAD_VALUES[name]
    clean = {key: item for key, item in os.environ.items() if key.upper() not in NAMES}
    env = {**clean, name: value}
    running = {
        service: subprocess.Popen(
            PROGRAMS[service][1], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for service in SHARED[name]
    }
    reasons = set()
    for service, process in running.items():
        out, err = process.communicate(timeout=60)
        program = PROGRAMS[service][0]
        assert process.returncode == 2, f"{service}: {process.returncode} {out} {err}"
        assert err.count("\n") == 1, f"{service}: {err}"
        prefix = f"{program}: invalid configuration: "
        assert err.startswith(prefix), err
        reasons.add(err.removeprefix(prefix).strip())
    assert len(reasons) == 1, reasons
    assert expected in reasons.pop()
