from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from ev_messaging import (
    HEADER_ERROR,
    HEADER_ROUTING_KEY,
    INVALID_QUEUE,
    AmqpSettings,
    AuthenticationFailed,
    BatchConsumer,
    Delivery,
    Fatal,
    Rejection,
    Retry,
    routing_key,
)

pytestmark = pytest.mark.integration

BATTERY = routing_key("battery")
SPEED = routing_key("speed")


Decide = Callable[[Sequence[Delivery]], Sequence[Rejection]]


class Recorder:
    """A handler that remembers every batch; ``decide`` may raise or return rejections."""

    def __init__(self, decide: Decide | None = None) -> None:
        self.batches: list[list[Delivery]] = []
        self.decide = decide

    def __call__(self, deliveries: Sequence[Delivery]) -> Sequence[Rejection]:
        self.batches.append(list(deliveries))
        if self.decide is None:
            return []
        return self.decide(deliveries)

    @property
    def bodies(self) -> list[bytes]:
        return [d.body for batch in self.batches for d in batch]


@contextmanager
def running(consumer: BatchConsumer) -> Iterator[threading.Thread]:
    """Run the consumer in a thread; stop it and surface its exception on exit."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            consumer.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        consumer.stop()
        thread.join(timeout=15)
    assert not thread.is_alive(), "run() did not return after stop()"
    if errors:
        raise errors[0]


def test_batches_are_handled_then_acked(settings, topology, broker) -> None:
    for i in range(25):
        broker.publish(BATTERY if i % 2 else SPEED, str(i).encode())
    handler = Recorder()
    consumer = BatchConsumer(settings, topology, handler, batch_size=10, batch_max_wait=0.2)
    with running(consumer):
        broker.wait_for(lambda: len(handler.bodies) == 25, what="25 deliveries handled")
    assert sorted(int(b) for b in handler.bodies) == list(range(25))
    assert all(1 <= len(batch) <= 10 for batch in handler.batches)
    assert {d.routing_key for d in handler.batches[0]} <= {BATTERY, SPEED}
    assert (broker.depth(BATTERY), broker.depth(SPEED)) == (0, 0)
    stats = consumer.stats
    assert (stats.consumed, stats.acked, stats.rejected) == (25, 25, 0)
    assert stats.acked_batches == len(handler.batches)


def test_rejections_move_to_the_invalid_queue_as_they_came(settings, topology, broker) -> None:
    reason = "bad value: " + "x" * 2000

    def reject_bad(deliveries: Sequence[Delivery]) -> list[Rejection]:
        return [Rejection(d, reason) for d in deliveries if d.body.startswith(b"bad")]

    body = b'bad {"value": "\xff\x00 not json'
    broker.publish(
        BATTERY,
        body,
        message_id="m-7",
        content_type="application/json",
        headers={"origin": "ev_001"},
    )
    broker.publish(BATTERY, b"good")
    consumer = BatchConsumer(settings, topology, Recorder(reject_bad), batch_max_wait=0.2)
    with running(consumer):
        [moved] = broker.drain(INVALID_QUEUE, 1)
        broker.wait_for(lambda: consumer.stats.acked == 2, what="both acked")
    assert moved.body == body
    props = moved.properties
    assert (props.message_id, props.content_type, props.delivery_mode) == (
        "m-7",
        "application/json",
        2,
    )
    assert props.headers["origin"] == "ev_001"
    assert props.headers[HEADER_ROUTING_KEY] == BATTERY
    error = props.headers[HEADER_ERROR]
    assert len(error) == 1000
    assert error.startswith("bad value: x")
    assert broker.depth(BATTERY) == 0
    assert consumer.stats.rejected == 1


def test_retry_hands_the_same_batch_again_and_acks_nothing_before(
    settings, topology, broker
) -> None:
    for i in range(5):
        broker.publish(BATTERY, str(i).encode())
    acked_while_retrying: list[int] = []

    def flaky(deliveries: Sequence[Delivery]) -> list[Rejection]:
        if len(handler.batches) <= 3:
            acked_while_retrying.append(consumer.stats.acked)
            raise Retry("redis is down")
        return []

    handler = Recorder(flaky)
    consumer = BatchConsumer(settings, topology, handler, batch_max_wait=0.3, retry_delay=0.01)
    with running(consumer):
        broker.wait_for(lambda: consumer.stats.acked == 5, what="the batch acked")
    first, *again = [[d.body for d in batch] for batch in handler.batches]
    assert len(again) == 3
    assert all(batch == first for batch in again)
    assert sorted(first) == [str(i).encode() for i in range(5)]
    assert acked_while_retrying == [0, 0, 0]
    assert consumer.stats.retries == 3


def test_stop_while_retrying_leaves_the_batch_to_the_broker(settings, topology, broker) -> None:
    for i in range(5):
        broker.publish(BATTERY, str(i).encode())

    def down(_deliveries: Sequence[Delivery]) -> list[Rejection]:
        raise Retry("still down")

    consumer = BatchConsumer(settings, topology, Recorder(down), batch_max_wait=0.2)
    with running(consumer):
        broker.wait_for(lambda: consumer.stats.retries >= 2, what="retries")
    assert consumer.stats.acked == 0
    broker.wait_for(lambda: broker.depth(BATTERY) == 5, what="the batch back in its queue")


def test_active_at_advances_while_idle_and_while_retrying(settings, topology, broker) -> None:
    def down(_deliveries: Sequence[Delivery]) -> list[Rejection]:
        raise Retry("still down")

    consumer = BatchConsumer(
        settings, topology, Recorder(down), batch_max_wait=0.05, retry_delay=0.05
    )
    created = consumer.active_at
    with running(consumer):
        broker.wait_for(lambda: consumer.active_at > created, what="the idle loop going round")
        broker.publish(BATTERY, b"1")
        broker.wait_for(lambda: consumer.stats.retries >= 2, what="retries")
        retrying = consumer.active_at
        broker.wait_for(lambda: consumer.active_at > retrying, what="the retry loop going round")
    assert consumer.stats.acked == 0


def test_a_hung_handler_ages_active_at(settings, topology, broker) -> None:
    entered, release = threading.Event(), threading.Event()

    def hang(_deliveries: Sequence[Delivery]) -> list[Rejection]:
        entered.set()
        release.wait(timeout=30)
        return []

    consumer = BatchConsumer(settings, topology, Recorder(hang), batch_max_wait=0.05)
    with running(consumer):
        broker.publish(BATTERY, b"1")
        broker.wait_for(entered.is_set, what="the handler running")
        stuck_at = consumer.active_at
        broker.wait_for(lambda: time.monotonic() > stuck_at + 0.5, what="half a second")
        assert consumer.active_at == stuck_at  # the liveness signal ages while it hangs
        release.set()
        broker.wait_for(lambda: consumer.stats.acked == 1, what="the batch acked")
        broker.wait_for(lambda: consumer.active_at > stuck_at, what="the loop going round")


def test_a_failing_batch_is_redelivered(settings, topology, broker) -> None:
    broker.publish(SPEED, b"once")

    def fail_first(_deliveries: Sequence[Delivery]) -> list[Rejection]:
        if len(handler.batches) == 1:
            raise RuntimeError("handler bug")
        return []

    handler = Recorder(fail_first)
    consumer = BatchConsumer(settings, topology, handler, batch_max_wait=0.01)
    with running(consumer):
        broker.wait_for(lambda: consumer.stats.acked == 1, what="the redelivery acked")
    [first], [second] = handler.batches
    assert (first.body, first.redelivered) == (b"once", False)
    assert (second.body, second.redelivered) == (b"once", True)
    assert consumer.stats.failed_batches == 1


def test_a_poison_message_ends_in_the_invalid_queue(settings, topology, broker) -> None:
    broker.publish(SPEED, b"poison")

    def always_fail(_deliveries: Sequence[Delivery]) -> list[Rejection]:
        raise RuntimeError("cannot process")

    handler = Recorder(always_fail)
    with running(BatchConsumer(settings, topology, handler, batch_max_wait=0.01)):
        [dead] = broker.drain(INVALID_QUEUE, 1)
    assert dead.body == b"poison"
    assert dead.properties.headers["x-first-death-reason"] == "delivery_limit"
    assert len(handler.batches) == topology.delivery_limit + 1


def test_stop_from_another_thread_finishes_and_acks_the_batch(settings, topology, broker) -> None:
    for i in range(5):
        broker.publish(BATTERY, str(i).encode())
    entered, release = threading.Event(), threading.Event()

    def slow(_deliveries: Sequence[Delivery]) -> list[Rejection]:
        entered.set()
        assert release.wait(10)
        return []

    handler = Recorder(slow)
    consumer = BatchConsumer(settings, topology, handler, batch_max_wait=0.3)
    with running(consumer) as thread:
        assert entered.wait(10)
        consumer.stop()
        release.set()
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert consumer.stats.acked == len(handler.bodies) == 5
    assert broker.depth(BATTERY) == 0


def test_stop_from_a_signal_handler(settings, topology, broker) -> None:
    broker.publish(BATTERY, b"1")
    handler = Recorder()
    consumer = BatchConsumer(settings, topology, handler, batch_max_wait=0.01)

    def signal_when_consumed() -> None:
        broker.wait_for(lambda: consumer.stats.acked == 1, what="the message acked")
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, lambda _signo, _frame: consumer.stop())
    sender = threading.Thread(target=signal_when_consumed)
    try:
        sender.start()
        consumer.run()  # in the main thread, where Python runs signal handlers
    finally:
        signal.signal(signal.SIGUSR1, previous)
        sender.join()
    assert handler.bodies == [b"1"]


def test_reconnects_after_the_connection_is_killed(settings, topology, broker, client_name) -> None:
    for i in range(50):
        broker.publish(BATTERY, str(i).encode())
    handler = Recorder()
    consumer = BatchConsumer(settings, topology, handler, batch_size=20, batch_max_wait=0.05)
    with running(consumer):
        broker.wait_for(lambda: consumer.stats.acked >= 20, what="a first batch acked")
        assert broker.kill_connections(client_name) == 1
        for i in range(50, 100):
            broker.publish(BATTERY, str(i).encode())
        broker.wait_for(lambda: len(set(handler.bodies)) == 100, what="every message handled")
        broker.wait_for(lambda: broker.depth(BATTERY) == 0, what="everything acked")
    assert {int(b) for b in handler.bodies} == set(range(100))
    assert consumer.stats.reconnects == 1


def test_a_deleted_queue_is_declared_again(settings, topology, broker) -> None:
    handler = Recorder()
    consumer = BatchConsumer(settings, topology, handler, batch_max_wait=0.01)
    with running(consumer):
        broker.publish(SPEED, b"before")
        broker.wait_for(lambda: consumer.stats.acked == 1, what="the first message acked")
        broker.channel.queue_delete(SPEED)  # the broker cancels the consumer
        broker.wait_for(lambda: consumer.stats.reconnects == 1, what="a reconnect")
        broker.wait_for(lambda: _exists(broker, SPEED), what="the queue declared again")

        # Straight to the queue (its binding may not be back yet), again every 2 s: on a busy
        # machine a quorum queue declared right after its deletion can be briefly gone again
        # or slow to serve (seen in CI), and the default exchange drops what has no queue.
        def second_acked() -> bool:
            if consumer.stats.acked >= 2:
                return True
            if time.monotonic() >= next_publish[0]:
                broker.channel.basic_publish("", SPEED, b"after")
                next_publish[0] = time.monotonic() + 2.0
            return False

        next_publish = [0.0]
        broker.wait_for(second_acked, timeout=60, what="a message after the queue came back")
    assert handler.bodies[0] == b"before"
    assert set(handler.bodies[1:]) == {b"after"}


def _exists(broker: Any, queue: str) -> bool:
    try:
        broker.depth(queue)
    except Exception:
        broker.channel = broker.channel.connection.channel()  # a failed passive declare closes it
        return False
    return True


def test_refused_credentials_stop_the_consumer(pytestconfig: pytest.Config, topology) -> None:
    # The shared vhost is fine here: the broker refuses the login before anything happens.
    bad = str(pytestconfig.getoption("--amqp-url")).replace(":guest@", ":wrong@")
    settings = AmqpSettings(urls=(bad,))
    with pytest.raises(AuthenticationFailed):
        BatchConsumer(settings, topology, Recorder()).run()


def test_waits_for_a_broker_that_is_not_up_and_still_stops(topology) -> None:
    settings = AmqpSettings(urls=("amqp://guest:guest@127.0.0.1:1/%2F",), retry_delay=0.01)
    consumer = BatchConsumer(settings, topology, Recorder())
    with running(consumer) as thread:
        thread.join(timeout=0.3)
        assert thread.is_alive()  # still retrying, not failed


def test_a_poison_message_does_not_drag_its_batch_along(settings, topology, broker) -> None:
    for body in (b"good-1", b"poison", b"good-2", b"good-3"):
        broker.publish(SPEED, body)

    def fail_on_poison(deliveries: Sequence[Delivery]) -> list[Rejection]:
        if any(d.body == b"poison" for d in deliveries):
            raise RuntimeError("cannot process")
        return []

    handler = Recorder(fail_on_poison)
    consumer = BatchConsumer(settings, topology, handler, batch_max_wait=0.2)
    with running(consumer):
        [dead] = broker.drain(INVALID_QUEUE, 1)
        broker.wait_for(lambda: broker.depth(SPEED) == 0, what="the good ones acked")
    assert dead.body == b"poison"
    assert dead.properties.headers["x-first-death-reason"] == "delivery_limit"
    handled = [d.body for batch in handler.batches if len(batch) == 1 for d in batch]
    assert sorted(b for b in handled if b != b"poison") == [b"good-1", b"good-2", b"good-3"]
    assert consumer.stats.acked == 3
    assert consumer.stats.requeued == topology.delivery_limit + 1


def test_fatal_stops_the_consumer_and_acks_nothing(settings, topology, broker) -> None:
    broker.publish(SPEED, b"one")

    def refuse(_deliveries: Sequence[Delivery]) -> list[Rejection]:
        raise Fatal("NOPERM this user has no permissions to run the 'evalsha' command")

    consumer = BatchConsumer(settings, topology, Recorder(refuse), batch_max_wait=0.01)
    with pytest.raises(Fatal, match="NOPERM"):
        consumer.run()
    assert consumer.stats.acked == 0
    broker.wait_for(lambda: broker.depth(SPEED) == 1, what="the message back in its queue")


def test_a_deleted_invalid_queue_is_declared_again_and_the_message_moved(
    settings, topology, broker
) -> None:
    def reject(deliveries: Sequence[Delivery]) -> list[Rejection]:
        return [Rejection(d, "bad") for d in deliveries]

    consumer = BatchConsumer(settings, topology, Recorder(reject), batch_max_wait=0.01)
    with running(consumer):
        broker.channel.queue_delete(INVALID_QUEUE)
        broker.publish(SPEED, b"moved anyway")
        broker.wait_for(lambda: consumer.stats.rejected == 1, what="the rejection settled")
        [moved] = broker.drain(INVALID_QUEUE, 1)
    assert moved.body == b"moved anyway"
    assert moved.properties.headers[HEADER_ERROR] == "bad"
