"""The queue-depth poller on its own connection, against the real broker."""

from __future__ import annotations

import logging
import socket
import urllib.parse

import pika
import pytest
from _scrape import parse, value
from prometheus_client import generate_latest

from ev_consumer.metrics import ConsumerMetrics
from ev_consumer.queue_poller import QueuePoller
from ev_messaging import AmqpSettings


def declare(amqp_url: str, queue: str, messages: int) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue, durable=True)
    for _ in range(messages):
        channel.basic_publish("", queue, b"x")
    connection.close()


@pytest.mark.integration
def test_polls_depths_and_skips_missing_queues(amqp_url: str) -> None:
    declare(amqp_url, "first", 3)
    declare(amqp_url, "last", 1)
    metrics = ConsumerMetrics()
    poller = QueuePoller(
        AmqpSettings(urls=(amqp_url,)), ["first", "missing", "last"], metrics, interval=60
    )
    try:
        poller.poll()
    finally:
        poller.stop()
    samples = parse(generate_latest(metrics.registry).decode())
    assert value(samples, "ev_queue_messages_ready", queue="first") == 3
    assert value(samples, "ev_queue_consumers", queue="first") == 0
    assert value(samples, "ev_queue_messages_ready", queue="missing") is None
    assert value(samples, "ev_queue_messages_ready", queue="last") == 1
    assert value(samples, "ev_consumer_queue_poll_up") == 1


@pytest.mark.integration
def test_refused_credentials_mark_the_poll_down_without_logging_the_password(
    amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = urllib.parse.urlsplit(amqp_url)
    wrong = urllib.parse.urlunsplit(url._replace(netloc=f"guest:s3cret@{url.hostname}:{url.port}"))
    metrics = ConsumerMetrics()
    poller = QueuePoller(AmqpSettings(urls=(wrong,)), ["first"], metrics, interval=60)
    with caplog.at_level(logging.INFO, logger="ev_consumer.queue_poller"):
        try:
            poller.poll()
            poller.poll()
        finally:
            poller.stop()
    samples = parse(generate_latest(metrics.registry).decode())
    assert value(samples, "ev_consumer_queue_poll_up") == 0
    ours = [record for record in caplog.records if record.name == "ev_consumer.queue_poller"]
    assert len(ours) == 1  # once per outage, not per poll
    assert "queue depths unavailable" in ours[0].getMessage()
    assert "s3cret" not in caplog.text


def _delete(amqp_url: str, queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    connection.channel().queue_delete(queue)
    connection.close()


@pytest.mark.integration
def test_a_queue_not_declared_yet_is_no_warning_and_a_vanished_one_is_one(
    amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: at a first start the poller may run before the consumer declared the queues;
    # pika logged a WARNING for each of them ("Received remote Channel.Close (404)").
    metrics = ConsumerMetrics()
    poller = QueuePoller(AmqpSettings(urls=(amqp_url,)), ["later"], metrics, interval=60)
    try:
        with caplog.at_level(logging.DEBUG, logger="ev_consumer.queue_poller"):
            poller.poll()
            assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == []
            assert "queue later not declared yet" in caplog.messages
            declare(amqp_url, "later", 2)
            poller.poll()
            _delete(amqp_url, "later")
            poller.poll()
            poller.poll()
    finally:
        poller.stop()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.getMessage()[:30]) for r in warnings] == [
        ("ev_consumer.queue_poller", "queue later unavailable: 404 N")
    ]
    samples = parse(generate_latest(metrics.registry).decode())
    assert value(samples, "ev_queue_messages_ready", queue="later") is None


def test_an_unreachable_broker_is_reported_with_a_reason(caplog: pytest.LogCaptureFixture) -> None:
    # Regression: "queue depths unavailable: " with nothing after it (pika's error had no text).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    metrics = ConsumerMetrics()
    url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    poller = QueuePoller(AmqpSettings(urls=(url,)), ["first"], metrics, interval=60)
    with caplog.at_level(logging.INFO):
        try:
            poller.poll()
        finally:
            poller.stop()
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.name == "ev_consumer.queue_poller"
    assert record.getMessage().startswith("queue depths unavailable: broker unavailable: ")
    assert "ConnectionRefusedError" in record.getMessage()
