"""The installed-wheel import check, on distributions this test environment has installed."""

from __future__ import annotations

from smoke_import import problems, top_level_modules


def test_top_level_modules_come_from_the_installed_files() -> None:
    assert {"pytest", "_pytest"} <= set(top_level_modules("pytest"))
    assert top_level_modules("iniconfig") == ["iniconfig"]


def test_an_installed_distribution_imports_from_site_packages() -> None:
    assert problems("iniconfig", ["a_module_nobody_installs"]) == []


def test_modules_that_must_be_absent_are_reported() -> None:
    assert problems("iniconfig", ["yaml", "a_module_nobody_installs"]) == [
        "iniconfig pulled in yaml"
    ]
