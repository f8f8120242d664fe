"""``REDIS_*``: the environment variables of ev-storage's :class:`~ev_storage.RedisSettings`
(install ``ev-service[redis]``)."""

from __future__ import annotations

from ev_service.environment import EnvGroup
from ev_storage import RedisSettings, StorageError

REDIS = EnvGroup(
    RedisSettings,
    names={name: f"REDIS_{name.upper()}" for name in RedisSettings.model_fields},
    errors=(StorageError,),
)
"""``REDIS_<FIELD>`` for every field of :class:`ev_storage.RedisSettings`."""
