"""The Redis key layout of the contract, in one place.

Every key of one sensor carries the hash tag ``{<sensor_id>}``, so on Redis Cluster they share a
slot and the write script may touch them together. A rate limiter's counters live here too, one
per client. Every part is checked before it becomes a key: a key is never built from unchecked
input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ev_schemas import RESERVED_NAMES, SENSOR_ID_RE, shown
from ev_schemas.catalogue import SENSOR_TYPE_PATTERN
from ev_storage.errors import InvalidKey

#: A rate counter's client: a hash of who is counted (32 hex digits), never a raw key or address.
CLIENT_ID_RE = re.compile(r"[0-9a-f]{32}")
#: A stream entry id (``<ms>-<seq>``).
STREAM_ID_RE = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
#: A prefix is a namespace (``"prod:"``, ``"evtest:1a2b:"``); braces would move the hash tag.
PREFIX_RE = re.compile(r"[A-Za-z0-9_.:/\-]{0,100}")
#: Shards of the fleet catalogue are numbered 0 .. MAX_SHARDS - 1 at most; shard n lives in group
#: n % CATALOGUE_GROUPS, and each group in one slot (its hash tag).
MAX_SHARDS = 65536
CATALOGUE_GROUPS = 64


def check_prefix(prefix: str) -> str:
    """``prefix`` if it may start keys, else :class:`InvalidKey`."""
    if not isinstance(prefix, str) or not PREFIX_RE.fullmatch(prefix):
        raise InvalidKey(f"key prefix {shown(prefix)} must be at most 100 letters, digits, '_.:/-'")
    return prefix


def check_sensor_id(sensor_id: str) -> str:
    """``sensor_id`` if it may be part of a key (the contract's rule), else :class:`InvalidKey`."""
    if not isinstance(sensor_id, str) or not SENSOR_ID_RE.fullmatch(sensor_id):
        raise InvalidKey(
            f"sensor_id {shown(sensor_id)} must be 1-64 letters, digits, '_', '-' or '.'"
        )
    return sensor_id


def check_client_id(client_id: str) -> str:
    """``client_id`` if it may name a rate counter (32 lowercase hex digits), else
    :class:`InvalidKey`."""
    if not isinstance(client_id, str) or not CLIENT_ID_RE.fullmatch(client_id):
        raise InvalidKey(f"client id {shown(client_id)} must be 32 lowercase hex digits (a hash)")
    return client_id


def check_sensor_type(sensor_type: str) -> str:
    """``sensor_type`` if it may be part of a key (a catalogue name), else :class:`InvalidKey`."""
    if (
        not isinstance(sensor_type, str)
        or not SENSOR_TYPE_PATTERN.fullmatch(sensor_type)
        or sensor_type in RESERVED_NAMES
    ):
        raise InvalidKey(
            f"sensor_type {shown(sensor_type)} must be a lowercase name of at most 32 letters, "
            f"digits and '_' other than {', '.join(sorted(RESERVED_NAMES))}"
        )
    return sensor_type


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Builds the keys and the live channel of a sensor, and a client's rate counter, under
    ``prefix``.

    | what | key |
    | --- | --- |
    | latest reading of a type | ``{prefix}sensor:{<id>}:<type>:latest`` |
    | history of a type | ``{prefix}sensor:{<id>}:<type>:history`` |
    | per-type aggregates | ``{prefix}sensor:{<id>}:summary`` |
    | pub/sub channel of new readings | ``{prefix}sensor:{<id>}:live`` |
    | pub/sub channel of alarm transitions | ``{prefix}sensor:{<id>}:live:alarms`` |
    | a client's request counter | ``{prefix}ratelimit:<client id>`` |
    | a shard of the fleet catalogue | ``{prefix}catalogue:{c:<n % 64>}:<n>:ids`` and siblings |
    | the alarm rules stored through the API | ``{prefix}{alarm-rules}`` |
    | the alarm outbox (webhooks' stream) | ``{prefix}{alarm-outbox}`` |
    """

    prefix: str = ""

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def sensor(self, sensor_id: str) -> str:
        """The common start of a sensor's keys, hash tag included."""
        return f"{self.prefix}sensor:{{{check_sensor_id(sensor_id)}}}"

    def latest(self, sensor_id: str, sensor_type: str) -> str:
        return f"{self.sensor(sensor_id)}:{check_sensor_type(sensor_type)}:latest"

    def history(self, sensor_id: str, sensor_type: str) -> str:
        return f"{self.sensor(sensor_id)}:{check_sensor_type(sensor_type)}:history"

    def summary(self, sensor_id: str) -> str:
        return f"{self.sensor(sensor_id)}:summary"

    def alarms(self, sensor_id: str) -> str:
        """The sensor's alarm rule states and episodes (alarms.lua)."""
        return f"{self.sensor(sensor_id)}:alarms"

    def alarm_episodes(self, sensor_id: str) -> str:
        """The sensor's episode index (alarms.lua): a sorted set by began ms."""
        return f"{self.sensor(sensor_id)}:alarms:episodes"

    def alarm_channel(self, sensor_id: str) -> str:
        """Where the write script publishes the sensor's alarm transitions."""
        return f"{self.live_channel(sensor_id)}:alarms"

    def alarm_channel_pattern(self) -> str:
        """A ``PSUBSCRIBE`` pattern of every sensor's alarm channel. The braces are literal in a
        glob, and neither a prefix nor a sensor id may hold the glob's special characters."""
        return f"{self.prefix}sensor:{{*}}:live:alarms"

    def sensor_of_alarm_channel(self, channel: str) -> str | None:
        """The sensor id of an alarm channel under this prefix; None for any other name."""
        head, tail = f"{self.prefix}sensor:{{", "}:live:alarms"
        if not (channel.startswith(head) and channel.endswith(tail)):
            return None
        sensor_id = channel[len(head) : -len(tail)]
        return sensor_id if SENSOR_ID_RE.fullmatch(sensor_id) else None

    def live_channel(self, sensor_id: str) -> str:
        """Where the write script publishes each newly stored reading of the sensor."""
        return f"{self.sensor(sensor_id)}:live"

    def rate_counter(self, client_id: str) -> str:
        """The request counter of a rate-limited client, named by a hash (``client_id``, 32 hex
        digits) so that neither an API key nor unchecked input ends up in Redis."""
        return f"{self.prefix}ratelimit:{check_client_id(client_id)}"

    def alarm_rules(self) -> str:
        """The rule set stored through the API (one string: canonical JSON); its own hash tag,
        so it lives in one slot like any single key, and a script may read it there."""
        return f"{self.prefix}{{alarm-rules}}"

    def alarm_outbox(self) -> str:
        """The stream of alarm transitions the webhook notifier delivers; its own hash tag."""
        return f"{self.prefix}{{alarm-outbox}}"

    def alarm_outbox_sent(self, entry_id: str) -> str:
        """The webhooks (by fingerprint) that accepted one outbox entry, beside the outbox."""
        if not isinstance(entry_id, str) or not STREAM_ID_RE.fullmatch(entry_id):
            raise InvalidKey(f"outbox entry id {shown(entry_id)} must be a stream id (<ms>-<n>)")
        return f"{self.alarm_outbox()}:sent:{entry_id}"

    def alarm_index(self, group: int, which: str) -> str:
        """A group's sorted set of the fleet's alarms (score: began ms, member: alarm id):
        ``all`` of them, or the ``active`` ones; 64 groups (``{a:<g>}``) over slots and nodes."""
        if which not in ("all", "active"):
            raise InvalidKey(f"alarm index must be 'all' or 'active', not {which!r}")
        if (
            isinstance(group, bool)
            or not isinstance(group, int)
            or not 0 <= group < CATALOGUE_GROUPS
        ):
            raise InvalidKey(
                f"alarm group must be an integer 0-{CATALOGUE_GROUPS - 1}, not {group!r}"
            )
        return f"{self.prefix}alarms:{{a:{group}}}:{which}"

    def catalogue_group(self, group: int) -> str:
        """The common start of the keys of one group of catalogue shards, hash tag included
        (``{c:<g>}``: a group lives in one slot, the 64 groups spread over slots and nodes)."""
        if (
            isinstance(group, bool)
            or not isinstance(group, int)
            or not 0 <= group < CATALOGUE_GROUPS
        ):
            raise InvalidKey(
                f"catalogue group must be an integer 0-{CATALOGUE_GROUPS - 1}, not {group!r}"
            )
        return f"{self.prefix}catalogue:{{c:{group}}}"

    def catalogue_shard(self, shard: int) -> str:
        """The common start of the keys of one shard of the fleet catalogue, in its group
        (``shard % 64``). The catalogue's script derives the shard's keys from it (see
        ``catalogue.lua``): ``:ids``, ``:seen``, ``:types``, ``:type:<type>``, ``:expires:<type>``.
        """
        if isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard < MAX_SHARDS:
            raise InvalidKey(
                f"catalogue shard must be an integer 0-{MAX_SHARDS - 1}, not {shard!r}"
            )
        return f"{self.catalogue_group(shard % CATALOGUE_GROUPS)}:{shard}"

    def catalogue_type(self, shard: int, sensor_type: str) -> str:
        """A shard's sorted set of the sensors that have readings of ``sensor_type``."""
        return f"{self.catalogue_shard(shard)}:type:{check_sensor_type(sensor_type)}"
