"""The pipeline on a real three-node RabbitMQ cluster while the node holding the queue leaders is
killed (``kill -9``) mid-run, and later restarted.

The topology is declared through node 1 with the product's own helper, so every quorum queue gets
a replica on each of the three nodes and its leader on node 1 (RabbitMQ's default leader
locator is the declaring client's node). The simulator and two consumer processes are given all
three URLs, that node first, so it is also the node they are connected to when it dies: the
queues must elect leaders on the survivors, the consumers and the publisher must move there by
themselves, and every confirmed reading must be stored exactly once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
import pytest

from ev_messaging import TopologySettings, declare_topology, safe_url
from ev_schemas import default_catalogue
from tests.cluster.rabbitmq_cluster import Node, PrivateRabbitCluster
from tests.faults.accounting import Expectation, account, assert_exact, observe
from tests.faults.live import LiveCounter
from tests.faults.support import (
    SIMULATOR_ARGV,
    Consumers,
    Process,
    consumer_env,
    reap,
    simulator_report,
)
from tests.support import consuming, wait_until

pytestmark = pytest.mark.integration

TOPOLOGY = TopologySettings.from_types(default_catalogue())
#: A run of about 20 s: long enough to kill a node a third of the way in and restart it while
#: the simulator still publishes; small enough for two cores shared with three brokers.
COUNT = 8_000
RATE = 400.0
KILL_AFTER = 2_500  # readings stored
REPORT = Path(__file__).resolve().parents[2] / ".reports" / "cluster-rabbitmq.json"


def simulate(urls: str, workdir: Path) -> Process:
    """The simulator on every node's URL, logging its connections (INFO)."""
    argv = (
        *SIMULATOR_ARGV,
        "--amqp-url", urls,
        "--vehicles", "20",
        "--count", str(COUNT),
        "--rate", str(RATE),
        "--seed", "11",
        "--log-level", "INFO",
        "--report-json", str(workdir / "report.json"),
    )  # fmt: skip
    return Process("simulator", argv, dict(os.environ), workdir / "simulator.log")


def connected_to(process: Process, node: Node, role: str) -> bool:
    """Whether ``process`` logged a connection of its ``role`` (consumer, publisher) to ``node``."""
    return f"{role} connected to {safe_url(node.url)}" in process.output()


def leaders_off(cluster: PrivateRabbitCluster, via: Node, dead: Node) -> bool:
    """Whether every queue has a leader other than ``dead``, as ``via`` sees it."""
    return all(leader != dead.name for leader, _ in cluster.queue_leaders(via).values())


def test_killing_the_node_of_the_queue_leaders_mid_run_loses_and_doubles_nothing(
    rabbit_cluster: PrivateRabbitCluster,
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
    cluster_summary: list[str],
) -> None:
    if importlib.util.find_spec("ev_simulator") is None:
        pytest.fail("this test runs the simulator: install services/simulator in the session")
    cluster = rabbit_cluster
    began = time.monotonic()
    first = cluster.nodes[0]
    with pika.BlockingConnection(pika.URLParameters(first.url)) as connection:
        declare_topology(connection.channel(), TOPOLOGY)
    queues = cluster.queue_leaders(first)
    everyone = sorted(node.name for node in cluster.nodes)
    assert {name: members for name, (_, members) in queues.items()} == dict.fromkeys(
        queues, everyone
    ), "every quorum queue has a replica on each node"
    victim = cluster.node(Counter(leader for leader, _ in queues.values()).most_common(1)[0][0])
    survivors = [node for node in cluster.nodes if node is not victim]
    urls = ",".join(node.url for node in [victim, *survivors])  # the clients start on the victim

    led = sum(leader == victim.name for leader, _ in queues.values())
    figures: dict[str, Any] = {"nodes": everyone, "killed": victim.name, "leaders": led}
    consumers = Consumers(tmp_path, consumer_env(urls, redis_url, key_prefix))
    try:
        with LiveCounter(redis_url, key_prefix) as live:
            for _ in range(2):
                consumers.start()
            consumers.wait_ready(timeout=60)
            wait_until(consuming(victim.url, TOPOLOGY.queues), 30, "the consumers consuming")
            simulator = simulate(urls, tmp_path)
            wait_until(live.reached(KILL_AFTER), 60, f"{KILL_AFTER} readings stored")
            assert simulator.alive, "the kill comes mid-run"

            cluster.kill(victim)
            killed_at = time.monotonic()
            figures["stored_before_kill"] = live.count_at(killed_at)
            wait_until(lambda: leaders_off(cluster, survivors[0], victim), 30, "new leaders")
            figures["new_leaders_s"] = round(time.monotonic() - killed_at, 2)
            wait_until(lambda: live.recovery(killed_at) is not None, 60, "storing again")
            figures["storing_again_s"] = round(live.recovery(killed_at) or 0.0, 2)
            for consumer in consumers.started:
                wait_until(
                    lambda c=consumer: any(connected_to(c, node, "consumer") for node in survivors),
                    30,
                    f"{consumer.name} on a surviving node",
                )
            figures["consumers_moved"] = True
            restarting = time.monotonic()
            cluster.restart(victim)
            figures["restart_s"] = round(time.monotonic() - restarting, 2)
            assert cluster.running_nodes(victim) == everyone, "the killed node rejoined"
            figures["simulator_alive_at_restart"] = simulator.alive

            report = simulator_report(simulator, tmp_path, timeout=120)
            expected = Expectation.from_report(report)
            wait_until(live.reached(expected.stored_total), 60, "every reading stored")
            consumers.stop_all(timeout=10)
            seen = observe(
                redis_url, key_prefix, survivors[0].url, expected.sensors, TOPOLOGY.queues
            )
            accounted = account("rabbitmq-cluster", expected, seen, live=live.count)
            publisher_moved = any(connected_to(simulator, node, "publisher") for node in survivors)
    finally:
        reap()
    figures |= {
        "cluster_startup_s": round(cluster.startup_s, 1),
        "sent": report["sent"],
        "confirmed": expected.published,
        "stored": accounted.stored,
        "announced": live.count,
        "lost": accounted.lost,
        "duplicated": accounted.duplicated,
        "publisher_moved": publisher_moved,
        "duration_s": round(time.monotonic() - began, 1),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    f = figures
    cluster_summary.append(
        f"RabbitMQ 3 nodes (clustered in {f['cluster_startup_s']} s), {victim.name} "
        f"(leader of {led} of {len(queues)} queues) killed -9 after {f['stored_before_kill']} "
        f"stored: new leaders in {f['new_leaders_s']} s, "
        f"storing again in {f['storing_again_s']} s, restarted and rejoined in "
        f"{f['restart_s']} s; sent {f['sent']}, confirmed {f['confirmed']}, stored {f['stored']} "
        f"(each once: lost {f['lost']}, duplicated {f['duplicated']}); "
        f"moved to the survivors: both consumers {f['consumers_moved']}, "
        f"publisher {publisher_moved}; "
        f"run {f['duration_s']} s"
    )
    assert publisher_moved, simulator.tail()
    assert_exact(accounted, expected, seen, live=live.count)
