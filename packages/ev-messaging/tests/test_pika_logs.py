"""pika's records of failures ev-messaging handles are DEBUG; its other records pass unchanged."""

from __future__ import annotations

import logging
import socket
import urllib.parse
from collections.abc import Iterator

import pika
import pytest
from test_consumer import running

from ev_messaging import (
    AmqpSettings,
    BatchConsumer,
    BrokerUnavailable,
    HandledPikaErrors,
    TopologySettings,
    install_pika_log_filter,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _filter_installed() -> Iterator[None]:
    """Installed as the consumer and publisher do; removed again, to leave pika as it was."""
    install_pika_log_filter()
    yield
    for name in ["pika", *logging.Logger.manager.loggerDict]:
        if name == "pika" or name.startswith("pika."):
            logger = logging.getLogger(name)
            for existing in [f for f in logger.filters if isinstance(f, HandledPikaErrors)]:
                logger.removeFilter(existing)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _refused(amqp_url: str) -> AmqpSettings:
    parts = urllib.parse.urlsplit(amqp_url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{_closed_port()}"
    return AmqpSettings(urls=(urllib.parse.urlunsplit(parts._replace(netloc=netloc)),))


def _pika_records(caplog: pytest.LogCaptureFixture, at_least: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("pika") and r.levelno >= at_least]


def test_a_refused_connect_leaves_no_pika_error(
    amqp_url: str, topology: TopologySettings, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: pika logged 7 ERROR records, one with a traceback, for each refused connect.
    consumer = BatchConsumer(_refused(amqp_url), topology, lambda _batch: [])
    with caplog.at_level(logging.INFO), pytest.raises(BrokerUnavailable):
        consumer._connect()
    assert _pika_records(caplog, logging.WARNING) == []


def test_with_pika_at_debug_the_records_stay_as_debug(
    amqp_url: str, topology: TopologySettings, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = BatchConsumer(_refused(amqp_url), topology, lambda _batch: [])
    with caplog.at_level(logging.DEBUG), pytest.raises(BrokerUnavailable):
        consumer._connect()
    kept = [r for r in _pika_records(caplog, logging.DEBUG) if "refused" in r.getMessage()]
    assert kept, "the connect failure is still there for a debugging session"
    assert _pika_records(caplog, logging.WARNING) == []


def test_pika_records_about_anything_else_pass_unchanged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("pika.channel").error("Unexpected frame: %r", "<frame>")
        try:
            raise TypeError("a bug in a callback")
        except TypeError:
            logging.getLogger("pika.callback").exception("Calling %s failed", "on_message")
        logging.getLogger("pika.channel").warning(
            "Received remote Channel.Close (%s): %r on %s", 406, "PRECONDITION_FAILED", "<ch>"
        )
    assert [(r.name, r.levelname) for r in _pika_records(caplog, logging.WARNING)] == [
        ("pika.channel", "ERROR"),
        ("pika.callback", "ERROR"),
        ("pika.channel", "WARNING"),
    ]


def test_a_passive_declare_of_a_missing_queue_leaves_no_pika_warning(
    amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: "Received remote Channel.Close (404)" at WARNING for a check the caller handles.
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        with caplog.at_level(logging.INFO), pytest.raises(pika.exceptions.ChannelClosedByBroker):
            connection.channel().queue_declare("not-declared-yet", passive=True)
    finally:
        connection.close()
    assert _pika_records(caplog, logging.WARNING) == []


def test_a_lost_connection_is_one_warning_without_a_traceback(
    settings: AmqpSettings, topology: TopologySettings, broker, client_name: str, caplog
) -> None:
    consumer = BatchConsumer(settings, topology, lambda _batch: [])
    with caplog.at_level(logging.INFO), running(consumer):
        broker.wait_for(lambda: broker.kill_connections(client_name) == 1, what="a connection")
        broker.wait_for(lambda: consumer.stats.reconnects == 1, what="a reconnect")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.exc_info) for r in warnings] == [("ev_messaging.consumer", None)]
    assert "consuming interrupted" in warnings[0].getMessage()
