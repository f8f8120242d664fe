from __future__ import annotations

import pytest

from ev_schemas import Catalogue, SchemaError, SensorType, default_catalogue
from ev_schemas.units import IDENTITY, Conversion


def test_default_catalogue_has_the_contract_types_with_canonical_units() -> None:
    catalogue = default_catalogue()
    assert {name: catalogue[name].unit for name in ("battery", "temperature", "speed")} == {
        "battery": "percentage",
        "temperature": "celsius",
        "speed": "km/h",
    }
    assert len(catalogue) >= 10


def test_restrict_keeps_order_and_refuses_unknown_names() -> None:
    catalogue = default_catalogue()
    assert list(catalogue.restrict(["speed", "battery", "speed"])) == ["speed", "battery"]
    with pytest.raises(SchemaError, match=r"unknown sensor type.*warp"):
        catalogue.restrict(["battery", "warp"])


@pytest.mark.parametrize("name", ["history", "summary", "Battery", "1x", "", "a" * 40])
def test_reserved_or_malformed_type_names_are_refused(name: str) -> None:
    with pytest.raises(SchemaError):
        SensorType(name, "unit", 0, 1, "x")


def test_inconsistent_definitions_are_refused() -> None:
    with pytest.raises(SchemaError, match="minimum"):
        SensorType("x", "u", 2, 1, "x")
    with pytest.raises(SchemaError, match="canonical unit"):
        SensorType("x", "u", 0, 1, "x", {"u": IDENTITY})
    with pytest.raises(SchemaError, match="twice"):
        Catalogue([SensorType("x", "u", 0, 1, "x"), SensorType("x", "u", 0, 1, "x")])
    with pytest.raises(SchemaError, match="at least one"):
        Catalogue([])


def test_conversion_lookup() -> None:
    speed = default_catalogue()["speed"]
    assert speed.accepted_units == ("km/h", "mph", "m/s")
    assert speed.conversion("km/h") is IDENTITY
    assert speed.conversion("knots") is None
    assert Conversion(scale=2, offset=1).apply(3) == 7
