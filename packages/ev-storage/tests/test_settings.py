"""Storage settings: defaults, derived milliseconds, validation."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from ev_storage import InvalidArgument, InvalidKey, StorageSettings


def test_defaults() -> None:
    settings = StorageSettings()
    assert settings.key_prefix == ""
    assert settings.history_retention == timedelta(days=7)
    assert settings.retention_ms == 7 * 24 * 3600 * 1000
    assert settings.latest_ttl_ms is None
    assert settings.summary_ttl_ms is None
    assert settings.history_bucket_ms == 120_000


def test_ttls_in_whole_milliseconds() -> None:
    settings = StorageSettings(
        latest_ttl=timedelta(minutes=5), summary_ttl=timedelta(seconds=1, microseconds=1500)
    )
    assert settings.latest_ttl_ms == 300_000
    assert settings.summary_ttl_ms == 1001


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        StorageSettings().key_prefix = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "field", ["history_retention", "latest_ttl", "summary_ttl", "history_bucket"]
)
@pytest.mark.parametrize("span", [timedelta(0), timedelta(seconds=-1), timedelta(microseconds=999)])
def test_spans_must_be_at_least_a_millisecond(field: str, span: timedelta) -> None:
    with pytest.raises(InvalidArgument, match=field):
        StorageSettings(**{field: span})  # type: ignore[arg-type]


def test_history_bucket_fits_a_32_bit_offset() -> None:
    assert StorageSettings(history_bucket=timedelta(milliseconds=2**32)).history_bucket_ms == 2**32
    with pytest.raises(InvalidArgument, match="history_bucket must be at most"):
        StorageSettings(history_bucket=timedelta(milliseconds=2**32 + 1))


def test_spans_must_be_timedeltas() -> None:
    with pytest.raises(InvalidArgument, match="timedelta"):
        StorageSettings(history_retention=3600)  # type: ignore[arg-type]


def test_prefix_must_not_carry_a_hash_tag() -> None:
    with pytest.raises(InvalidKey):
        StorageSettings(key_prefix="{tenant}:")
