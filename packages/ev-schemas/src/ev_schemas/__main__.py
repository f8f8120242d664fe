"""``python -m ev_schemas``: print the JSON Schema of the published reading."""

from ev_schemas.json_schema import render

print(render(), end="")
