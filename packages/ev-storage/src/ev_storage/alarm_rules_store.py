"""The alarm rule set stored through the API: one Redis string, the set's canonical JSON.

A PUT replaces the whole set with one ``SET``, so readers see the old set or the new one, never a
mix. The set is checked against the catalogue before it is stored; what is read back is only
checked as a rule set (the catalogue may have changed since: the caller decides). Its version is
:attr:`ev_schemas.AlarmRuleSet.version`, derived from the content, so nothing else is stored.
"""

from __future__ import annotations

from pydantic import ValidationError

from ev_schemas import AlarmRuleSet
from ev_storage.clients import AsyncClient, SyncClient
from ev_storage.errors import CorruptRecord, connection_errors_translated
from ev_storage.keys import KeyLayout


class AlarmRulesStore:
    """Reads and replaces the stored rule set. The client is the caller's: this class neither
    connects nor closes it."""

    def __init__(self, client: AsyncClient, keys: KeyLayout) -> None:
        self._client = client
        self._key = keys.alarm_rules()

    async def get(self) -> AlarmRuleSet | None:
        """The stored set; None when none was ever stored. :class:`~ev_storage.CorruptRecord`
        when the key holds something else, :class:`~ev_storage.StorageUnavailable` and kin when
        Redis cannot answer."""
        with connection_errors_translated():
            raw = await self._client.get(self._key)
        return None if raw is None else decode_rules(self._key, raw)

    async def put(self, rules: AlarmRuleSet) -> AlarmRuleSet:
        """Replace the stored set with ``rules`` (one atomic ``SET``); returns what is stored."""
        with connection_errors_translated():
            await self._client.set(self._key, rules.canonical_json())
        return rules


def read_stored_rules(client: SyncClient, keys: KeyLayout) -> AlarmRuleSet | None:
    """:meth:`AlarmRulesStore.get` for a synchronous client (the consumer's)."""
    key = keys.alarm_rules()
    with connection_errors_translated():
        raw = client.get(key)
    if raw is None:
        return None
    if not isinstance(raw, bytes | str):
        raise CorruptRecord(key, f"expected a string, got {type(raw).__name__}")
    return decode_rules(key, raw)


def decode_rules(key: str, raw: bytes | str) -> AlarmRuleSet:
    """A stored set from its JSON; :class:`~ev_storage.CorruptRecord` if it is not one."""
    try:
        return AlarmRuleSet.model_validate_json(raw)
    except ValidationError as exc:
        reason = exc.errors(include_url=False, include_input=False)[0]["msg"]
        raise CorruptRecord(key, f"not a valid alarm rule set: {reason}") from None
