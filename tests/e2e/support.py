"""Helpers of the end-to-end tests."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pika


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class Stack:
    api_url: str
    amqp_url: str
    key_prefix: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path


def queue_depth(amqp_url: str, queue: str) -> int:
    """Ready messages in ``queue``, or -1 while it does not exist."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    except pika.exceptions.ChannelClosedByBroker:
        return -1
    finally:
        if connection.is_open:
            connection.close()
