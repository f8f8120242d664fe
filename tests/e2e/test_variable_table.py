"""The README's table of environment variables and the settings models: the same variables both
ways, and the same table (`nox -s lint` runs `python -m ev_service.variables --check` too)."""

from __future__ import annotations

import re
from pathlib import Path

from ev_service.variables import embedded, installed_services, table, variables

README = Path(__file__).parents[2] / "README.md"


def readme_variables() -> set[str]:
    rows = embedded(README.read_text(encoding="utf-8")).splitlines()[2:]
    return {re.match(r"\| `([A-Z0-9_]+)` \|", row).group(1) for row in rows}  # type: ignore[union-attr]


def test_every_service_is_installed_and_registered() -> None:
    assert set(installed_services()) == {"api", "consumer", "simulator"}


def test_every_readme_variable_is_in_a_model_and_every_model_variable_in_the_readme() -> None:
    in_models = {variable.name for variable in variables(installed_services())}
    documented = readme_variables()
    assert documented - in_models == set(), "in the README only"
    assert in_models - documented == set(), "in the models only"


def test_the_readme_table_is_the_generated_one() -> None:
    assert embedded(README.read_text(encoding="utf-8")) == table()
