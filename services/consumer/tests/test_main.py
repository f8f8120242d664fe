"""``python -m ev_consumer --check``: 0 while the consumer runs, 1 once its heartbeat is stale;
``--rebuild-catalogue`` indexes the stored histories."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from _consumer_process import ConsumerProcess, poll_until, wait_until

from ev_consumer.__main__ import main


def test_check_without_a_heartbeat_fails_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONSUMER_HEARTBEAT_FILE", str(tmp_path / "absent"))
    assert main(["--check"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "no heartbeat file at" in captured.err


def test_check_with_invalid_configuration_fails_with_1_not_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONSUMER_HEARTBEAT_MAX_AGE_S", "-1")
    assert main(["--check"]) == 1
    assert "invalid configuration" in capsys.readouterr().err


@pytest.mark.integration
def test_check_passes_while_running_and_fails_once_the_heartbeat_is_stale(
    start_consumer: Callable[..., ConsumerProcess],
) -> None:
    consumer = start_consumer(CONSUMER_HEARTBEAT_MAX_AGE_S="1")
    wait_until(lambda: consumer.check().returncode == 0, 30, "a fresh heartbeat")
    assert "alive" in consumer.check().stdout
    consumer.process.send_signal(signal.SIGSTOP)  # a hung process: nothing stamps the file
    try:
        stale = poll_until(lambda: consumer.check().returncode == 1, 30)
        result = consumer.check()
    finally:
        consumer.process.send_signal(signal.SIGCONT)
    assert stale
    assert "s old (max 1 s)" in result.stderr
    wait_until(lambda: consumer.check().returncode == 0, 30, "the heartbeat fresh again")
    assert consumer.stop() == 0, consumer.output()
    result = consumer.check()
    assert result.returncode == 1
    assert "no heartbeat file" in result.stderr


@pytest.mark.integration
def test_rebuild_catalogue_indexes_the_stored_histories(
    redis_url: str,
    key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import redis

    from ev_schemas import Reading
    from ev_storage import ReadingWriter, StorageSettings

    client = redis.Redis.from_url(redis_url)
    writer = ReadingWriter(client, StorageSettings(key_prefix=key_prefix))
    at = "2024-02-01T12:00:00Z"
    writer.store_many(
        [
            Reading(sensor_id=f"ev_{n}", sensor_type="battery", timestamp=at, value=50.0,
                    unit="percentage")
            for n in range(3)
        ]
    )  # fmt: skip
    for key in client.scan_iter(match=f"{key_prefix}catalogue:*"):
        client.delete(key)
    # The test Redis as the variables name it.
    url = redis.connection.parse_url(redis_url)
    monkeypatch.setenv("REDIS_HOST", str(url.get("host", "127.0.0.1")))
    monkeypatch.setenv("REDIS_PORT", str(url.get("port", 6379)))
    monkeypatch.setenv("REDIS_DB", str(url.get("db", 0)))
    if url.get("password"):
        monkeypatch.setenv("REDIS_PASSWORD", str(url["password"]))
    monkeypatch.setenv("REDIS_KEY_PREFIX", key_prefix)
    assert main(["--rebuild-catalogue"]) == 0
    assert capsys.readouterr().out == "ev-consumer: 3 histories indexed in the fleet catalogue\n"
    ids = [
        member
        for key in client.scan_iter(match=f"{key_prefix}catalogue:*:ids")
        for member in client.zrange(key, 0, -1)
    ]
    assert sorted(ids) == [b"ev_0", b"ev_1", b"ev_2"]
    client.close()
