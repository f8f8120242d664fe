from __future__ import annotations

import ssl

import pika.exceptions
import pytest
from pika.adapters.utils.connection_workflow import (
    AMQPConnectionWorkflowFailed,
    AMQPConnectorStackTimeout,
    AMQPConnectorTransportSetupError,
)

from ev_messaging import (
    AuthenticationFailed,
    BrokerUnavailable,
    ConfirmTimeout,
    Fatal,
    MessagingError,
    PublishNacked,
    Retry,
    TlsVerificationFailed,
    Unroutable,
)
from ev_messaging.errors import from_pika

REFUSED_LOGIN = "ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - Login was refused'"
REFUSED_VHOST = "ConnectionClosedByBroker: (530) 'NOT_ALLOWED - vhost nosuchvhost not found'"
CUT = "StreamLostError: ('Transport indicated EOF',)"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        # What pika raises for a real refusal: the broker's close, reply code in the text.
        (pika.exceptions.ProbableAuthenticationError(REFUSED_LOGIN), AuthenticationFailed),
        (pika.exceptions.ProbableAccessDeniedError(REFUSED_VHOST), AuthenticationFailed),
        # pika's guess when the stream merely ended during the handshake (a network cut).
        (pika.exceptions.ProbableAuthenticationError(CUT), BrokerUnavailable),
        (pika.exceptions.ProbableAccessDeniedError(CUT), BrokerUnavailable),
        (pika.exceptions.AuthenticationError("PLAIN"), AuthenticationFailed),
        (pika.exceptions.ConnectionClosedByBroker(530, "NOT_ALLOWED"), AuthenticationFailed),
        (pika.exceptions.ChannelClosedByBroker(403, "ACCESS_REFUSED"), AuthenticationFailed),
        (pika.exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED"), BrokerUnavailable),
        (pika.exceptions.StreamLostError("eof"), BrokerUnavailable),
        (pika.exceptions.AMQPConnectionError("refused"), BrokerUnavailable),
        (ConnectionRefusedError(111, "refused"), BrokerUnavailable),
        # A broker that accepts TCP but never completes the handshake.
        (AMQPConnectorStackTimeout("Timeout during AMQP handshake"), BrokerUnavailable),
        (pika.exceptions.ChannelClosedByBroker(406, "PRECONDITION_FAILED"), MessagingError),
        # pika, when a peer accepts TCP and closes at once (a node going away).
        (
            ValueError(
                "Expected connected socket, but getpeername() failed: error=OSError(107, "
                "'Transport endpoint is not connected')"
            ),
            BrokerUnavailable,
        ),
        (ValueError("some programming error"), MessagingError),
    ],
)
def test_pika_errors_are_translated(exc: BaseException, expected: type[MessagingError]) -> None:
    error = from_pika(exc)
    assert type(error) is expected


def test_every_error_shares_one_root_and_reads_well() -> None:
    for error in (
        Unroutable("ev.sensor.x", exchange="ev.sensors", message_id="m"),
        PublishNacked("k", exchange="e"),
        ConfirmTimeout(3, 1.5),
        Retry("redis down"),
        Fatal("NOPERM"),
    ):
        assert isinstance(error, MessagingError)
    assert str(Unroutable("k")) == "unroutable: 'k' on the default exchange: NO_ROUTE"
    assert str(ConfirmTimeout(3, 1.5)) == "3 message(s) still unconfirmed after 1.5s"


def _expired() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] ...")
    error.verify_message = "certificate has expired"
    error.reason = "CERTIFICATE_VERIFY_FAILED"
    return error


def test_a_certificate_that_does_not_verify_is_not_an_outage() -> None:
    # What a blocking connection raises, and what a select connection reports (wrapped).
    raw = _expired()
    wrapped = AMQPConnectionWorkflowFailed([AMQPConnectorTransportSetupError(raw)])
    for exc in (raw, pika.exceptions.AMQPConnectionError(wrapped)):
        error = from_pika(exc, address="rabbit:5671")
        assert type(error) is TlsVerificationFailed
        assert not isinstance(error, BrokerUnavailable)
        assert error.reason == "certificate has expired"
        assert str(error) == (
            "RabbitMQ TLS: certificate verify failed: certificate has expired (rabbit:5671)"
        )


def test_the_address_is_added_to_an_error_raised_without_it() -> None:
    error = from_pika(TlsVerificationFailed("certificate has expired"), address="rabbit:5671")
    assert str(error).endswith("(rabbit:5671)")


def test_other_tls_errors_stay_outages() -> None:
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    assert type(from_pika(eof)) is BrokerUnavailable
