"""Reading model, sensor-type catalogue, units and validation for EV fleet telemetry.

No broker or Redis dependency: publishers in Python import this to build valid readings.
"""

from ev_schemas.__about__ import __version__
from ev_schemas.aggregate_models import AggregateBucket, AggregateSeries, aggregate_series_json
from ev_schemas.aggregation import (
    AGGREGATORS,
    FILLS,
    AggregationPlan,
    BucketFolder,
    BucketValues,
    ExactSum,
    PartialAggregate,
)
from ev_schemas.alarm_models import (
    ALARM_ID_PATTERN,
    Alarm,
    AlarmAck,
    AlarmEvent,
    AlarmPage,
    SensorAlarms,
)
from ev_schemas.alarm_rules import (
    ALARM_RULES_EXAMPLE,
    MAX_RULES,
    AlarmRule,
    AlarmRulesDocument,
    AlarmRuleSet,
    InvalidAlarmRules,
    Severity,
    StaleRule,
)
from ev_schemas.alarm_rules_file import load_alarm_rules
from ev_schemas.api_models import (
    DependencyHealth,
    ErrorResponse,
    FleetCount,
    FleetPage,
    FleetSensor,
    HealthReport,
    HistoryPage,
    SensorReadings,
    SensorSummary,
    TypeSummary,
    history_page_json,
)
from ev_schemas.catalogue import (
    DEFAULT_TYPES,
    RESERVED_NAMES,
    Catalogue,
    SensorType,
    default_catalogue,
)
from ev_schemas.durations import Duration, format_duration, parse_duration
from ev_schemas.errors import InvalidReading, SchemaError
from ev_schemas.fleet_aggregate_models import (
    FleetAggregate,
    FleetAggregateItem,
    FleetAggregatePage,
    fleet_aggregate_json,
    fleet_aggregate_page_json,
)
from ev_schemas.fleet_aggregation import FleetFolder, PartialBucket
from ev_schemas.intervals import LADDER, MAX_BUCKETS, Grid, Interval, InvalidAggregation
from ev_schemas.json_schema import alarm_rules_json_schema, reading_json_schema
from ev_schemas.reading import (
    SENSOR_ID_RE,
    PublishedReading,
    Reading,
    check_sensor_id,
    stored_reading_json,
)
from ev_schemas.timestamps import (
    format_epoch_ms,
    format_timestamp,
    from_epoch_ms,
    to_epoch_ms,
    to_epoch_ms_ceil,
    to_epoch_us,
    utc_now,
)
from ev_schemas.units import Conversion
from ev_schemas.validation import ReadingValidator, shown, timestamp_ms

__all__ = [
    "ALARM_ID_PATTERN",
    "Alarm",
    "AlarmAck",
    "AlarmEvent",
    "AlarmPage",
    "SensorAlarms",
    "ALARM_RULES_EXAMPLE",
    "MAX_RULES",
    "AlarmRule",
    "AlarmRuleSet",
    "AlarmRulesDocument",
    "Duration",
    "InvalidAlarmRules",
    "Severity",
    "StaleRule",
    "alarm_rules_json_schema",
    "format_duration",
    "load_alarm_rules",
    "parse_duration",
    "AGGREGATORS",
    "FILLS",
    "LADDER",
    "MAX_BUCKETS",
    "AggregateBucket",
    "AggregateSeries",
    "AggregationPlan",
    "BucketFolder",
    "BucketValues",
    "ExactSum",
    "PartialAggregate",
    "Grid",
    "Interval",
    "InvalidAggregation",
    "aggregate_series_json",
    "DEFAULT_TYPES",
    "RESERVED_NAMES",
    "SENSOR_ID_RE",
    "Catalogue",
    "Conversion",
    "DependencyHealth",
    "ErrorResponse",
    "FleetAggregate",
    "FleetAggregateItem",
    "FleetAggregatePage",
    "FleetCount",
    "FleetFolder",
    "FleetPage",
    "FleetSensor",
    "HealthReport",
    "HistoryPage",
    "InvalidReading",
    "PartialBucket",
    "PublishedReading",
    "Reading",
    "ReadingValidator",
    "SchemaError",
    "SensorReadings",
    "SensorSummary",
    "SensorType",
    "TypeSummary",
    "__version__",
    "check_sensor_id",
    "default_catalogue",
    "fleet_aggregate_json",
    "fleet_aggregate_page_json",
    "format_epoch_ms",
    "format_timestamp",
    "from_epoch_ms",
    "history_page_json",
    "reading_json_schema",
    "shown",
    "stored_reading_json",
    "timestamp_ms",
    "to_epoch_ms",
    "to_epoch_ms_ceil",
    "to_epoch_us",
    "utc_now",
]
