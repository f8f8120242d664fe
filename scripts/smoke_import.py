"""Import what an installed distribution ships, and prove it came from the installed wheel.

    python scripts/smoke_import.py DISTRIBUTION [--absent MODULE ...]

Run with the interpreter of a clean virtual environment (``nox -s wheels`` does): every top-level
module the distribution installed must import from that environment's site-packages (not from a
source tree), and no ``--absent`` module may be importable there. Standard library only.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path, PurePosixPath


def top_level_modules(distribution: str) -> list[str]:
    """The top-level packages and modules an installed distribution put in site-packages."""
    modules = set()
    for file in importlib.metadata.distribution(distribution).files or []:
        first = PurePosixPath(file).parts[0]
        if first.endswith((".dist-info", ".data")) or first == "..":
            continue
        if len(PurePosixPath(file).parts) > 1 or first.endswith(".py"):
            modules.add(first.removesuffix(".py"))
    return sorted(modules)


def problems(distribution: str, absent: Sequence[str]) -> list[str]:
    """Why the installed distribution is not what its wheel should give (empty when it is)."""
    found = []
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    modules = top_level_modules(distribution)
    if not modules:
        found.append(f"{distribution} installed no module")
    for name in modules:
        module = importlib.import_module(name)
        location = Path(module.__file__ or "").resolve()
        if not location.is_relative_to(site_packages):
            found.append(f"{name} imported from {location}, not from {site_packages}")
    present = [name for name in absent if importlib.util.find_spec(name) is not None]
    if present:
        found.append(f"{distribution} pulled in {', '.join(present)}")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry: print what was imported, or every problem and exit 1."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("distribution", help="distribution name, e.g. ev-schemas")
    parser.add_argument("--absent", nargs="*", default=[], help="modules that must not import")
    args = parser.parse_args(argv)
    found = problems(args.distribution, args.absent)
    if found:
        for problem in found:
            print(problem, file=sys.stderr)
        return 1
    version = importlib.metadata.version(args.distribution)
    modules = ", ".join(top_level_modules(args.distribution))
    without = f" without {', '.join(args.absent)}" if args.absent else ""
    print(f"{args.distribution} {version}: {modules} imported from the wheel{without}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
