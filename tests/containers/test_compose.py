"""compose.yaml's rules that its schema cannot check (nox's `static` session checks the schema)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.containers.support import ROOT, image

COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
SECRETS = {"RABBITMQ_PASS", "REDIS_PASSWORD"}
#: ``${NAME}``, ``${NAME:-default}``, ``${NAME:?message}`` and the like: the name and the operator.
VARIABLE = re.compile(r"\$\{(\w+)(:?[-?+])?")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return dict(loaded["services"])


def _has_healthcheck(name: str, service: dict[str, Any]) -> bool:
    if "test" in service.get("healthcheck", {}):
        return True
    # Without a `test`, Docker runs the image's own HEALTHCHECK with compose's timing.
    if "build" in service and "healthcheck" in service:
        check = image(name).healthcheck
        return check is not None and check.argv is not None
    return False


def test_every_dependency_waits_until_healthy(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            assert how == {"condition": "service_healthy"}, f"{name} -> {dependency}: {how}"
            assert _has_healthcheck(dependency, services[dependency]), dependency


def test_every_long_running_service_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if "profiles" not in service:
            assert _has_healthcheck(name, service), name


def test_our_images_build_from_the_repository_root(services: dict[str, dict[str, Any]]) -> None:
    built = {name: service["build"] for name, service in services.items() if "build" in service}
    assert set(built) == {"consumer", "api", "simulator"}
    for name, build in built.items():
        assert build == {"context": ".", "dockerfile": f"services/{name}/Dockerfile"}


def test_the_simulator_is_behind_its_profile(services: dict[str, dict[str, Any]]) -> None:
    profiled = {
        name: service["profiles"] for name, service in services.items() if "profiles" in service
    }
    assert profiled == {"simulator": ["simulator"]}


def test_secrets_are_required_and_every_variable_is_documented() -> None:
    used = VARIABLE.findall(COMPOSE.read_text(encoding="utf-8"))
    required = {name for name, operator in used if operator == ":?"}
    assert required == SECRETS
    for name, operator in used:
        if name in SECRETS:
            assert operator == ":?", f"${{{name}{operator}...}}: a secret never has a default"
    documented = set(re.findall(r"^(\w+)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.M))
    assert {name for name, _ in used} <= documented
