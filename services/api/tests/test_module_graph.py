"""The shape of ev_api's imports, read from the source: no cycles, and the modules that must stay
free of the web framework or of redis-py do.

Every import counts, those under ``if TYPE_CHECKING:`` and inside functions too: a cycle hidden
from the interpreter is still one for a reader and for mypy.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ev_api

SOURCE = Path(ev_api.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in SOURCE.rglob("*.py")}


def imported_names(module: str) -> set[str]:
    """Every module ``module`` names in an import statement, absolute (relative ones resolved)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            # ``from ev_api.routes import health`` imports the module ev_api.routes.health.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def internal_graph() -> dict[str, set[str]]:
    return {module: imported_names(module) & MODULES.keys() - {module} for module in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that ends where it starts, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        path.append(module)
        for target in sorted(graph[module]):
            cycle = visit(target)
            if cycle is not None:
                return cycle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle is not None:
            return cycle
    return None


def test_the_reader_sees_every_module() -> None:
    assert {"ev_api.auth", "ev_api.deps", "ev_api.limiter", "ev_api.routes.live"} <= MODULES.keys()
    assert "ev_api.deps" in imported_names("ev_api.auth")
    assert "ev_api.routes.health" in imported_names("ev_api.app")


def test_finds_a_cycle_when_there_is_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_in_ev_api() -> None:
    cycle = find_cycle(internal_graph())
    assert cycle is None, " -> ".join(cycle or [])


def _third_party_roots(module: str) -> set[str]:
    return {name.partition(".")[0] for name in imported_names(module)}


def test_the_limiter_knows_neither_the_web_framework_nor_redis_py() -> None:
    assert not _third_party_roots("ev_api.limiter") & {"fastapi", "starlette", "redis"}
    # ... nor, through another module of the API, anything that does.
    assert not imported_names("ev_api.limiter") & MODULES.keys()


@pytest.mark.parametrize("module", ["ev_api.limiter", "ev_api.live_fanout", "ev_api.deps"])
def test_redis_py_stays_behind_ev_storage(module: str) -> None:
    assert "redis" not in _third_party_roots(module)
