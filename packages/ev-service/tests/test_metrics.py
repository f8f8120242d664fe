"""Each service's registry: its own, with the process collectors and the version."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest

from ev_service.metrics import service_registry


def test_a_registry_of_its_own_with_the_version_and_the_process() -> None:
    registry = service_registry("demo", "1.2.3", "The demo's")
    text = generate_latest(registry).decode()
    assert 'ev_demo_info{version="1.2.3"} 1.0' in text
    assert "# HELP ev_demo_info The demo's version (value 1)" in text
    assert "python_gc_objects_collected_total" in text
    assert registry is not REGISTRY
    assert "ev_demo_info" not in generate_latest(REGISTRY).decode()


def test_two_registries_do_not_clash() -> None:
    first, second = service_registry("a", "1", "A's"), service_registry("a", "2", "A's")
    assert 'version="1"' in generate_latest(first).decode()
    assert 'version="2"' in generate_latest(second).decode()
