"""The CI matrices made from `nox -l --json`."""

from __future__ import annotations

import pytest
from ci_matrix import MatrixError, matrices


def test_sessions_split_by_the_services_tag() -> None:
    listing = [
        {"session": "lint", "name": "lint", "python": "3.11", "tags": []},
        {"session": "tests-3.12(api)", "name": "tests", "python": "3.12", "tags": ["services"]},
        {"session": "versions", "name": "versions", "python": None, "tags": ["release"]},
    ]

    assert matrices(listing) == {
        "services": [{"session": "tests-3.12(api)", "python": "3.12"}],
        "standalone": [
            {"session": "lint", "python": "3.11"},
            {"session": "versions", "python": "3.11"},
        ],
    }


def test_an_empty_listing_is_an_error() -> None:
    with pytest.raises(MatrixError, match="no session"):
        matrices([])


def test_a_session_over_several_pythons_is_an_error() -> None:
    with pytest.raises(MatrixError, match="one Python per session"):
        matrices([{"session": "odd", "python": ["3.11", "3.12"], "tags": []}])
