from __future__ import annotations

import pika

from ev_messaging import PublishNacked, Unroutable
from ev_messaging.confirms import Confirms, Outgoing


def message(key: str = "k", body: bytes = b"{}", message_id: str | None = None) -> Outgoing:
    return Outgoing("ev.sensors", key, body, pika.BasicProperties(message_id=message_id))


def test_an_ack_with_multiple_settles_every_lower_tag() -> None:
    confirms = Confirms()
    for tag in range(1, 6):
        confirms.sent(tag, message())
    assert confirms.on_confirm(3, multiple=True, acked=True) == 3
    assert len(confirms) == 2
    assert confirms.on_confirm(5, multiple=False, acked=True) == 1
    assert confirms.on_confirm(4, multiple=False, acked=True) == 1
    assert (len(confirms), confirms.confirmed, list(confirms.failures)) == (0, 5, [])


def test_a_nack_is_reported_with_the_message() -> None:
    confirms = Confirms()
    confirms.sent(1, message("a", message_id="m-1"))
    confirms.sent(2, message("b"))
    confirms.on_confirm(1, multiple=False, acked=False)
    [failure] = confirms.failures
    assert isinstance(failure, PublishNacked)
    assert (failure.routing_key, failure.message_id) == ("a", "m-1")
    assert (confirms.nacked, confirms.confirmed, len(confirms)) == (1, 0, 1)


def test_a_nack_within_the_retries_waits_to_be_sent_again_in_order() -> None:
    confirms = Confirms(nack_retries=1)
    first, second, third = message("a"), message("b"), message("c")
    for tag, outgoing in enumerate((first, second, third), start=1):
        confirms.sent(tag, outgoing)
    confirms.on_confirm(2, multiple=False, acked=False)
    assert (confirms.retries, list(confirms.failures), len(confirms)) == ([second], [], 3)
    assert confirms.take_unconfirmed() == [first, second, third]  # the order they were sent in
    assert len(confirms) == 0
    confirms.sent(4, second)
    confirms.on_confirm(4, multiple=False, acked=False)  # its retry is used up: reported
    [failure] = confirms.failures
    assert isinstance(failure, PublishNacked)
    assert (confirms.nacked, second.nacks, confirms.retries) == (1, 1, [])


def test_a_return_marks_the_oldest_matching_message_and_its_ack_reports_it() -> None:
    confirms = Confirms()
    first, twin, other = message("x", b"1", "first"), message("x", b"1", "twin"), message("y")
    for tag, outgoing in enumerate((first, twin, other), start=1):
        confirms.sent(tag, outgoing)
    confirms.on_return("ev.sensors", "x", b"1", "312 NO_ROUTE")
    assert (first.returned, twin.returned) == ("312 NO_ROUTE", None)
    confirms.on_confirm(3, multiple=True, acked=True)
    [failure] = confirms.failures
    assert isinstance(failure, Unroutable)
    assert (failure.message_id, failure.reason) == ("first", "312 NO_ROUTE")
    assert (confirms.returned, confirms.confirmed) == (1, 2)


def test_a_return_for_nothing_pending_is_ignored() -> None:
    confirms = Confirms()
    confirms.on_return("ev.sensors", "x", b"1", "312 NO_ROUTE")
    assert not confirms.failures


def test_unconfirmed_messages_are_handed_back_in_order() -> None:
    confirms = Confirms()
    sent = [message(body=str(i).encode()) for i in range(4)]
    for tag, outgoing in enumerate(sent, start=1):
        confirms.sent(tag, outgoing)
    confirms.on_confirm(1, multiple=False, acked=True)
    assert confirms.take_unconfirmed() == sent[1:]
    assert len(confirms) == 0
    assert confirms.on_confirm(4, multiple=True, acked=True) == 0  # a stale tag settles nothing
