"""The start of every service's Prometheus registry (install ``ev-service[metrics]``)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)


def service_registry(service: str, version: str, described_as: str) -> CollectorRegistry:
    """A registry of the service's own (never the global one) with the process, platform and GC
    collectors and ``ev_<service>_info{version}`` set to 1; ``described_as`` names the service in
    the info metric's help ("The consumer's version (value 1)")."""
    registry = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    Gauge(
        f"ev_{service}_info", f"{described_as} version (value 1)", ["version"], registry=registry
    ).labels(version).set(1)
    return registry
