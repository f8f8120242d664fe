"""Redis's reply to the write pipeline is dropped after Redis executed it.

The forwarder between the consumer and Redis passes the pipeline of write-script calls through,
then drops the reply and resets the connection: the readings are stored but the consumer cannot
know. redis-py replays the whole pipeline on a new connection (or the batch runner does, after
Retry); the script finds every reading already there and changes nothing. The state stays exact.
"""

from __future__ import annotations

import random
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.accounting import Expectation
from tests.faults.forwarder import Forwarder
from tests.faults.scenario import Scenario
from tests.faults.support import Consumers, simulate, simulator_report
from tests.support import wait_until

DROPS = 6
SEED = 11

pytestmark = pytest.mark.integration


def script_replies(data: bytes) -> bool:
    """The reply to a pipeline of write-script calls: arrays of integer outcomes (``*3``,
    ``:1``, ``:0``, ``:-1``, ...), as opposed to a ``SCRIPT LOAD`` digest or a ``+OK``."""
    head, _, rest = data.partition(b"\r\n")
    return head.startswith(b"*") and rest.startswith(b":")


def dropped(link: Forwarder, count: int) -> Callable[[], bool]:
    return lambda: link.stats.dropped_replies >= count


def test_replies_lost_after_the_write_change_nothing(
    amqp_url: str,
    redis_url: str,
    consumers: Consumers,
    scenario: Callable[..., Scenario],
    tmp_path: Path,
) -> None:
    run = scenario(f"Redis reply dropped after the write x{DROPS}", redis_url)
    target = urllib.parse.urlsplit(redis_url)
    with Forwarder(target.port or 6379, target.hostname or "127.0.0.1") as link:
        consumers.start(REDIS_HOST="127.0.0.1", REDIS_PORT=str(link.port))
        simulator = simulate(amqp_url, tmp_path, count=15_000, rate=1_500, seed=SEED)
        rng = random.Random(SEED)
        for drop in range(DROPS):
            then = run.live.count + rng.randrange(100, 800)  # where in the stream
            wait_until(run.live.reached(then), 60, "readings stored between drops")
            link.drop_replies(1, matching=script_replies)
            wait_until(dropped(link, drop + 1), 30, "a reply dropped")
            run.fault_over()
            run.recovered()
        report = simulator_report(simulator, tmp_path, timeout=120)
        run.notes["connections_reset"] = link.stats.dropped_replies
        run.finish(Expectation.from_report(report))
