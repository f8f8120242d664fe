"""Stage 10: what 20 alarm rules cost ingest (``alarm_ingest_ratio``).

The ingest backlog (the simulated fleet's readings) is drained by ``python -m ev_consumer``
twice per round, in turns: into a prefix without alarm rules, and into one whose stored rule set
(``PUT /api/v1/alarm-rules``'s key) holds 20 rules over the fleet's types: thresholds near the
fleet's usual values, so some raise, holds by duration and by count, hysteresis bands. The CPU
time of the consumer and of Redis while storing (``/proc``), per stored reading, is compared:
with the rules over without, the median of the rounds (target <= 1.15).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import redis

from ev_bench.backlog import Outgoing, publish_bare, sensor_ids_of
from ev_bench.context import RunContext
from ev_bench.ingest import Drained, StoredCounter, consumer_service, timed_drain
from ev_bench.stats import median
from ev_schemas import AlarmRuleSet
from ev_storage import KeyLayout

#: 20 rules over the simulated fleet's types (docs/alarms.md's format).
RULES = AlarmRuleSet.model_validate(
    {
        "rules": [
            {"id": "battery-low", "sensor_type": "battery", "below": 20, "clear_above": 25},
            {"id": "battery-critical", "sensor_type": "battery", "below": 5, "readings": 3},
            {"id": "battery-full", "sensor_type": "battery", "above": 95, "for": "30s"},
            {"id": "pack-hot", "sensor_type": "temperature", "above": 45, "clear_below": 40},
            {"id": "pack-very-hot", "sensor_type": "temperature", "above": 60, "for": "10s"},
            {"id": "pack-cold", "sensor_type": "temperature", "below": 0, "readings": 5},
            {"id": "speeding", "sensor_type": "speed", "above": 130, "for": "5s"},
            {"id": "crawling", "sensor_type": "speed", "below": 5, "for": "60s"},
            {"id": "voltage-band", "sensor_type": "voltage", "above": 850, "below": 250},
            {"id": "voltage-sag", "sensor_type": "voltage", "below": 300, "readings": 2},
            {"id": "current-high", "sensor_type": "current", "above": 400, "for": "3s"},
            {"id": "regen-high", "sensor_type": "current", "below": -300, "readings": 2},
            {"id": "power-high", "sensor_type": "power", "above": 200, "clear_below": 150},
            {"id": "soh-low", "sensor_type": "state_of_health", "below": 80},
            {"id": "tyre-low", "sensor_type": "tire_pressure", "below": 200, "for": "20s"},
            {"id": "tyre-high", "sensor_type": "tire_pressure", "above": 300},
            {"id": "rpm-high", "sensor_type": "motor_rpm", "above": 12000, "for": "2s"},
            {"id": "rpm-reverse", "sensor_type": "motor_rpm", "below": -3000},
            {"id": "odometer-service", "sensor_type": "odometer", "above": 150000},
            {"id": "pack-warm", "sensor_type": "temperature", "above": 38, "readings": 10},
        ]
    }
)


@dataclass
class AlarmFigures:
    """CPU seconds of the consumer and Redis per stored reading, per round."""

    without: list[float] = field(default_factory=list)
    with_rules: list[float] = field(default_factory=list)
    rates_without: list[float] = field(default_factory=list)
    rates_with: list[float] = field(default_factory=list)
    transitions: int = 0

    @property
    def ratio(self) -> float:
        return median(self.with_rules) / median(self.without)


def cpu_per_reading(drained: Drained) -> float:
    """Consumer + Redis CPU seconds per stored reading during a drain (the broker's part does
    not depend on the rules)."""
    shares = drained.cpu.shares
    busy = (shares.get("consumer", 0.0) + shares.get("redis", 0.0)) * drained.seconds
    return busy / drained.count


def run_alarms(ctx: RunContext, messages: Sequence[Outgoing], *, rounds: int = 2) -> AlarmFigures:
    figures = AlarmFigures()
    sensors = sensor_ids_of(messages)
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        for round_ in range(1, rounds + 1):
            for rules in (False, True):
                tag = f"alarms{round_}{'r' if rules else 'n'}"
                url = ctx.sandbox.vhost(tag)
                publish_bare(url, messages)
                prefix = ctx.sandbox.prefix(tag)
                if rules:
                    client.set(KeyLayout(prefix).alarm_rules(), RULES.canonical_json())
                drained = timed_drain(
                    ctx,
                    [consumer_service(ctx, f"consumer-{tag}", url, prefix)],
                    StoredCounter(client, prefix, sensors),
                    len(messages),
                )
                ctx.sandbox.drop_vhost(url)
                per_reading = cpu_per_reading(drained)
                (figures.with_rules if rules else figures.without).append(per_reading)
                (figures.rates_with if rules else figures.rates_without).append(drained.per_s)
                if rules:
                    figures.transitions = _episodes(client, prefix, sensors)
                ctx.say(
                    f"alarms round {round_}: {'20 rules' if rules else 'no rules'}: "
                    f"{per_reading * 1e6:.1f} µs CPU per reading, {drained.per_s:,.0f}/s "
                    f"{drained.note()}"
                )
    finally:
        client.close()
    ctx.say(
        f"alarms: CPU per reading with 20 rules / without = {figures.ratio:.3f} "
        f"({figures.transitions} episodes stored)"
    )
    return figures


def _episodes(client: redis.Redis, prefix: str, sensors: Sequence[str]) -> int:
    """How many alarm episodes the drain stored (a check that the rules did work)."""
    keys = KeyLayout(prefix)
    pipe = client.pipeline(transaction=False)
    for sensor in sensors:
        pipe.hkeys(keys.alarms(sensor))
    return sum(1 for fields in pipe.execute() for name in fields if bytes(name).startswith(b"e|"))
