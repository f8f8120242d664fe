"""``python -m ev_schemas [reading|alarm-rules]``: print a JSON Schema (default: the reading's)."""

import sys

from ev_schemas.json_schema import render, render_alarm_rules

SCHEMAS = {"reading": render, "alarm-rules": render_alarm_rules}

name = sys.argv[1] if len(sys.argv) > 1 else "reading"
if name not in SCHEMAS:
    sys.exit(f"usage: python -m ev_schemas [{'|'.join(SCHEMAS)}]")
print(SCHEMAS[name](), end="")
