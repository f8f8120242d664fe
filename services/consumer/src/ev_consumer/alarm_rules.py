"""Which alarm rules the consumer evaluates: the set stored through the API, else the file's.

Checked before a batch at most every ``refresh_s`` seconds (one ``GET``): a rule set changed
through ``PUT /api/v1/alarm-rules`` applies to every consumer within that time, with no
restart. A Redis error while checking keeps the rules in force (the batch's own write will
meet the same error and be retried); a stored set naming a type this consumer does not have
keeps those rules out, with a warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ev_schemas import AlarmRule, AlarmRuleSet, Catalogue, StaleRule
from ev_storage import (
    AlarmTransition,
    KeyLayout,
    ReadingWriter,
    StorageError,
    SyncClient,
    read_stored_rules,
)

log = logging.getLogger("ev_consumer")

#: Seconds between two checks of the stored rule set.
REFRESH_S = 5.0


def log_transition(transition: AlarmTransition) -> None:
    """One alarm transition in the consumer's log (structured fields for JSON logs)."""
    log.info(
        "alarm %s",
        transition.kind,
        extra={
            "sensor_id": transition.sensor_id,
            "sensor_type": transition.sensor_type,
            "rule": transition.rule_id,
            "severity": transition.severity,
            "began_ms": transition.began_ms,
            "raised_ms": transition.raised_ms,
            "cleared_ms": transition.cleared_ms,
            "lag_ms": transition.at_ms - transition.began_ms,
        },
    )


class AlarmRulesSource:
    """Keeps a writer's alarm rules in line with the stored set (or the file's)."""

    def __init__(
        self,
        client: SyncClient,
        keys: KeyLayout,
        file_rules: AlarmRuleSet,
        catalogue: Catalogue,
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client, self._keys = client, keys
        self._file_rules, self._catalogue = file_rules, catalogue
        self._refresh_s, self._clock = refresh_s, clock
        self._checked_at: float | None = None
        self._version: str | None = None
        self._lock = threading.Lock()  # the batch loop and the staleness sweep both refresh
        #: The staleness rules in force (for the sweep), on configured types only.
        self.stale_rules: list[StaleRule] = []

    @property
    def version(self) -> str | None:
        """The version of the set in force (None before the first check)."""
        return self._version

    def refresh(self, writer: ReadingWriter) -> None:
        """Give ``writer`` the current rules if they changed; at most every ``refresh_s``."""
        with self._lock:
            self._refresh(writer)

    def _refresh(self, writer: ReadingWriter) -> None:
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self._refresh_s:
            return
        self._checked_at = now
        try:
            stored = read_stored_rules(self._client, self._keys)
        except StorageError as exc:
            log.warning("alarm rules not checked (the rules in force stay): %s", exc)
            return
        rules = stored if stored is not None else self._file_rules
        if rules.version == self._version:
            return
        usable = self._usable(rules)
        writer.set_alarm_rules(usable)
        self.stale_rules = [rule for rule in rules.stale if rule.sensor_type in self._catalogue]
        self._version = rules.version
        log.info(
            "alarm rules in force",
            extra={
                "version": rules.version,
                "source": "api" if stored is not None else "file",
                "rules": len(usable),
            },
        )

    def _usable(self, rules: AlarmRuleSet) -> list[AlarmRule]:
        unknown = [rule.id for rule in rules.rules if rule.sensor_type not in self._catalogue]
        if unknown:
            log.warning(
                "alarm rules on sensor types this consumer does not have are left out: %s",
                ", ".join(unknown),
            )
        return [rule for rule in rules.rules if rule.sensor_type in self._catalogue]
