"""Redis storage of EV fleet telemetry: key layout, atomic idempotent writes, reads.

Takes clients and settings from the caller; never reads the environment, never connects at import.
"""

from ev_storage.__about__ import __version__
from ev_storage.aggregate import aggregate_history
from ev_storage.alarm_outbox import AlarmOutbox, OutboxBacklog, OutboxEntry
from ev_storage.alarm_reader import AlarmFilter, AlarmId, AlarmReader
from ev_storage.alarm_rules_store import AlarmRulesStore, read_stored_rules
from ev_storage.alarm_transitions import AlarmTransition
from ev_storage.catalogue import CatalogueIndex, IndexEntry
from ev_storage.catalogue_reader import (
    CatalogueFilter,
    CatalogueItem,
    CataloguePage,
    CatalogueReader,
)
from ev_storage.clients import (
    AsyncClient,
    PubSubClient,
    SyncClient,
    async_client,
    check_connection,
    check_connection_async,
    single_node,
    sync_client,
)
from ev_storage.cursor import (
    CATALOGUE_ORDERS,
    CURSOR_PATTERN,
    Position,
    decode_catalogue_cursor,
    decode_cursor,
    encode_catalogue_cursor,
    encode_cursor,
)
from ev_storage.errors import (
    CorruptRecord,
    CredentialsRefused,
    InvalidArgument,
    InvalidCursor,
    InvalidKey,
    StorageError,
    StorageRefused,
    StorageTimedOut,
    StorageUnavailable,
    TlsVerificationFailed,
    UnknownSensorType,
)
from ev_storage.fleet_aggregate import (
    TooManySensors,
    aggregate_each,
    fleet_aggregate,
    select_sensors,
)
from ev_storage.history import Row
from ev_storage.keys import KeyLayout
from ev_storage.live_feed import (
    LiveEvent,
    LiveFeed,
    LiveMessage,
    LivePatternMessage,
    LivePatternSubscribed,
    LiveSubscribed,
)
from ev_storage.rate_counter import RateCounter, WindowCount
from ev_storage.reader import ReadingReader
from ev_storage.redis_settings import RedisSettings
from ev_storage.settings import StorageSettings
from ev_storage.tls import redis_tls_options
from ev_storage.writer import ReadingWriter, WriteOutcome

__all__ = [
    "AlarmFilter",
    "AlarmOutbox",
    "OutboxBacklog",
    "OutboxEntry",
    "AlarmId",
    "AlarmReader",
    "AlarmTransition",
    "CATALOGUE_ORDERS",
    "AlarmRulesStore",
    "CorruptRecord",
    "CURSOR_PATTERN",
    "AsyncClient",
    "CatalogueFilter",
    "CatalogueIndex",
    "CatalogueItem",
    "CataloguePage",
    "CatalogueReader",
    "PubSubClient",
    "CredentialsRefused",
    "InvalidArgument",
    "InvalidCursor",
    "IndexEntry",
    "InvalidKey",
    "KeyLayout",
    "LiveEvent",
    "LiveFeed",
    "LiveMessage",
    "LivePatternMessage",
    "LivePatternSubscribed",
    "LiveSubscribed",
    "Position",
    "RateCounter",
    "ReadingReader",
    "ReadingWriter",
    "RedisSettings",
    "Row",
    "StorageError",
    "StorageRefused",
    "StorageSettings",
    "StorageTimedOut",
    "StorageUnavailable",
    "SyncClient",
    "TlsVerificationFailed",
    "TooManySensors",
    "UnknownSensorType",
    "WindowCount",
    "WriteOutcome",
    "aggregate_each",
    "read_stored_rules",
    "aggregate_history",
    "__version__",
    "async_client",
    "check_connection",
    "check_connection_async",
    "decode_catalogue_cursor",
    "decode_cursor",
    "encode_catalogue_cursor",
    "encode_cursor",
    "fleet_aggregate",
    "redis_tls_options",
    "select_sensors",
    "single_node",
    "sync_client",
]
