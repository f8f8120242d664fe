"""The table of every environment variable of every installed service, made from their settings
models, so the README's table cannot drift from the code.

``python -m ev_service.variables`` prints it; ``--check README.md`` fails when the README's copy
(between the ``<!-- variables -->`` and ``<!-- /variables -->`` lines) differs, ``--write`` updates
it. Services register their settings class under the ``ev_service.settings`` entry point group.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from ev_service.environment import GroupFactory

ENTRY_POINTS = "ev_service.settings"
BEGIN = "<!-- variables: made by `python -m ev_service.variables`; do not edit by hand -->"
END = "<!-- /variables -->"
HEADER = "| variable | used by | default | meaning |\n| --- | --- | --- | --- |"


@dataclass
class Variable:
    """One environment variable as the table shows it."""

    name: str
    meaning: str
    rank: int  # 0: Redis and RabbitMQ, 1: other shared variables, 2: a service's own
    defaults: dict[str, str] = field(default_factory=dict)  # service -> shown default

    def row(self) -> str:
        shown = set(self.defaults.values())
        if len(shown) == 1:
            default = shown.pop()
        else:
            default = ", ".join(f"{value} ({service})" for service, value in self.defaults.items())
        return f"| `{self.name}` | {', '.join(self.defaults)} | {default} | {self.meaning} |"


def installed_services() -> dict[str, type[BaseSettings]]:
    """Each installed service's settings class, by service name, sorted by name."""
    found = {point.name: point.load() for point in entry_points(group=ENTRY_POINTS)}
    return dict(sorted(found.items()))


def variables(services: dict[str, type[BaseSettings]]) -> list[Variable]:
    """Every variable of ``services``: Redis and RabbitMQ first, then the other shared ones,
    then each service's own, each in the order first met."""
    table: dict[str, Variable] = {}
    for service, settings in services.items():
        for name, default, meaning, rank in _fields(settings):
            variable = table.setdefault(name, Variable(name, meaning, rank))
            variable.defaults[service] = default
    return sorted(table.values(), key=lambda variable: variable.rank)


def _fields(settings: type[BaseSettings]) -> Iterator[tuple[str, str, str, int]]:
    prefix = str(settings.model_config.get("env_prefix", "")).upper()
    for name, info in settings.model_fields.items():
        factory = info.default_factory
        if isinstance(factory, GroupFactory):
            group = factory.group
            for path, variable in group.names.items():
                model_field = _model_field(group.model, path)
                if path in factory.defaults:
                    default = _shown(factory.defaults[path])
                else:
                    default = _default(model_field)
                meaning = group.meanings.get(path) or _meaning(model_field)
                yield variable, default, meaning, 0
        elif isinstance(info.annotation, type) and issubclass(info.annotation, BaseSettings):
            yield from _fields(info.annotation)
        else:
            rank = 1 if _declared_here(settings, name) else 2
            yield f"{prefix}{name.upper()}", _default(info), _meaning(info), rank


def _declared_here(settings: type[BaseSettings], name: str) -> bool:
    """Whether field ``name`` comes from one of this package's shared mixins."""
    owner = next(k for k in settings.__mro__ if name in getattr(k, "__annotations__", {}))
    return owner.__module__.startswith(__package__ or "ev_service")


def _model_field(model: type[BaseModel], path: str) -> FieldInfo | None:
    head, _, rest = path.partition(".")
    info = model.model_fields[head]
    return None if rest else info  # a nested dataclass's fields have no FieldInfo


def _meaning(info: FieldInfo | None) -> str:
    return " ".join((info.description or "").split()) if info is not None else ""


def _default(info: FieldInfo | None) -> str:
    if info is None:
        return "unset"
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "shown_default" in extra:
        return str(extra["shown_default"])
    if info.default is PydanticUndefined:
        return "required"
    return _shown(info.default)


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        value = str(value).lower()
    if value in ("", ()):
        return "empty"
    return f"`{value}`"


def table(services: dict[str, type[BaseSettings]] | None = None) -> str:
    """The Markdown table of every variable of ``services`` (the installed ones)."""
    rows = [variable.row() for variable in variables(services or installed_services())]
    return "\n".join([HEADER, *rows])


def embedded(text: str) -> str:
    """The table between the markers in ``text``; ValueError without them."""
    try:
        start = text.index(BEGIN) + len(BEGIN)
        return text[start : text.index(END, start)].strip()
    except ValueError:
        raise ValueError(f"no {BEGIN!r} ... {END!r} block") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ev_service.variables", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", type=Path, metavar="FILE", help="fail if FILE's table differs")
    mode.add_argument("--write", type=Path, metavar="FILE", help="replace FILE's table")
    args = parser.parse_args(argv)
    current = table()
    if args.check is None and args.write is None:
        print(current)
        return 0
    path: Path = args.check or args.write
    text = path.read_text(encoding="utf-8")
    try:
        written = embedded(text)
    except ValueError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    if written == current:
        return 0
    if args.write is not None:
        path.write_text(text.replace(written, current), encoding="utf-8")
        print(f"{path}: variable table updated")
        return 0
    diff = difflib.unified_diff(
        written.splitlines(), current.splitlines(), f"{path}", "the settings models", lineterm=""
    )
    print("\n".join(diff), file=sys.stderr)
    print(
        f"{path}: the variable table differs from the settings models; "
        f"run `python -m ev_service.variables --write {path}`",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
