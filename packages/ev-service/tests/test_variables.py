"""The variable table: made from settings classes, checked against and written into a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings

from ev_service import SERVICE_CONFIG, LoggingVars
from ev_service.redis_env import REDIS
from ev_service.variables import BEGIN, END, main, table, variables
from ev_storage import RedisSettings


class First(LoggingVars):
    model_config = SERVICE_CONFIG

    redis: RedisSettings = Field(default_factory=REDIS.factory(socket_timeout_s=1.0))
    first_only: int = 3
    """a variable of the first service"""


class Second(LoggingVars):
    model_config = SERVICE_CONFIG

    redis: RedisSettings = Field(default_factory=REDIS.factory())


SERVICES: dict[str, type[BaseSettings]] = {"first": First, "second": Second}


def test_shared_variables_first_with_every_service_and_its_default() -> None:
    rows = {variable.name: variable for variable in variables(SERVICES)}
    names = list(rows)
    assert names[0] == "REDIS_HOST"
    assert names.index("LOG_LEVEL") > names.index("REDIS_TLS_INSECURE")
    assert names[-1] == "FIRST_ONLY"
    assert rows["REDIS_PORT"].row() == "| `REDIS_PORT` | first, second | `6379` | Redis port |"
    assert "`1.0` (first), `2.0` (second)" in rows["REDIS_SOCKET_TIMEOUT_S"].row()
    assert rows["REDIS_PASSWORD"].row().startswith("| `REDIS_PASSWORD` | first, second | unset |")
    assert rows["FIRST_ONLY"].row() == (
        "| `FIRST_ONLY` | first | `3` | a variable of the first service |"
    )


def test_check_and_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ev_service.variables.installed_services", lambda: SERVICES)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{BEGIN}\n| old |\n{END}\n\nAfter.\n")
    assert main(["--check", str(readme)]) == 1
    assert main(["--write", str(readme)]) == 0
    assert main(["--check", str(readme)]) == 0
    text = readme.read_text()
    assert table(SERVICES) in text
    assert text.startswith("# Title\n")
    assert text.endswith("\nAfter.\n")


def test_a_file_without_the_markers_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ev_service.variables.installed_services", lambda: SERVICES)
    readme = tmp_path / "README.md"
    readme.write_text("no table here\n")
    assert main(["--check", str(readme)]) == 1
