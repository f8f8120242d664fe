"""The queue-depth poller on its own connection, against the real broker."""

from __future__ import annotations

import logging
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
