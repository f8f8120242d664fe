"""The final stage of a Dockerfile, as far as running it goes: ENV, USER, HEALTHCHECK, ENTRYPOINT
and CMD.

A reader for our own Dockerfiles, not a general one: commands must be in exec form (JSON arrays),
which is also what hadolint asks for; anything it does not understand is an error, not a guess.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class DockerfileError(ValueError):
    """The Dockerfile says something this reader does not accept."""


@dataclass(frozen=True)
class Healthcheck:
    """A HEALTHCHECK: the command Docker runs (``None`` for ``HEALTHCHECK NONE``), its options."""

    argv: tuple[str, ...] | None
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def timeout_s(self) -> float:
        """How long Docker lets one check run (30 s unless ``--timeout`` says otherwise)."""
        return duration_s(self.options.get("timeout", "30s"))


@dataclass(frozen=True)
class FinalStage:
    """What the image built from the last stage runs, and with which environment and user."""

    base: str
    env: Mapping[str, str]
    user: str | None
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    healthcheck: Healthcheck | None

    @property
    def argv(self) -> tuple[str, ...]:
        """The container's command line: ENTRYPOINT followed by CMD."""
        return self.entrypoint + self.cmd


def instructions(text: str) -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` per instruction: comments dropped, continuation lines joined."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):  # also inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical = (pending + stripped).strip()
        pending = ""
        if logical:
            keyword, _, arguments = logical.partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    if pending.strip():
        raise DockerfileError("the last instruction ends with a line continuation")
    return found


def final_stage(text: str) -> FinalStage:
    """The last stage of the Dockerfile ``text``."""
    stage: list[tuple[str, str]] | None = None
    base = ""
    for keyword, arguments in instructions(text):
        if keyword == "FROM":
            base, stage = arguments.split()[0], []
        elif stage is not None:
            stage.append((keyword, arguments))
    if stage is None:
        raise DockerfileError("no FROM instruction")
    env: dict[str, str] = {}
    user: str | None = None
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    for keyword, arguments in stage:
        if keyword == "ENV":
            env.update(env_assignments(arguments, env))
        elif keyword == "USER":
            user = arguments
        elif keyword == "ENTRYPOINT":
            # As in Docker, a later ENTRYPOINT resets the CMD inherited so far.
            entrypoint, cmd = exec_form(arguments, keyword), ()
        elif keyword == "CMD":
            cmd = exec_form(arguments, keyword)
        elif keyword == "HEALTHCHECK":
            healthcheck = parse_healthcheck(arguments)
    return FinalStage(base, env, user, entrypoint, cmd, healthcheck)


def env_assignments(arguments: str, env: Mapping[str, str]) -> dict[str, str]:
    """The variables one ENV instruction sets; ``$NAME`` and ``${NAME}`` expand from ``env``
    (a name it does not hold, like the base image's ``$PATH``, stays as written)."""
    words = shlex.split(arguments)
    if not words:
        raise DockerfileError("ENV without a variable")
    if "=" not in words[0]:  # the legacy form: ENV NAME value with spaces
        name, _, value = arguments.partition(" ")
        return {name: _expand(value.strip(), env)}
    assigned: dict[str, str] = {}
    for word in words:
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise DockerfileError(f"ENV {arguments!r}: {word!r} is not NAME=value")
        assigned[name] = _expand(value, {**env, **assigned})
    return assigned


def exec_form(arguments: str, keyword: str) -> tuple[str, ...]:
    """The argv of an exec-form (JSON array) command; a shell-form one is refused."""
    try:
        argv = json.loads(arguments)
    except json.JSONDecodeError:
        argv = None
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise DockerfileError(f"{keyword} {arguments!r} is not in exec form")
    return tuple(argv)


def parse_healthcheck(arguments: str) -> Healthcheck:
    """``HEALTHCHECK [--option=value ...] CMD [...]`` or ``HEALTHCHECK NONE``."""
    if arguments.strip().upper() == "NONE":
        return Healthcheck(None)
    options: dict[str, str] = {}
    rest = arguments.strip()
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        name, equals, value = option[2:].partition("=")
        if not equals:
            raise DockerfileError(f"HEALTHCHECK option {option!r} is not --name=value")
        options[name] = value
        rest = rest.strip()
    keyword, _, command = rest.partition(" ")
    if keyword.upper() != "CMD":
        raise DockerfileError(f"HEALTHCHECK {arguments!r} has no CMD")
    return Healthcheck(exec_form(command.strip(), "HEALTHCHECK CMD"), options)


def duration_s(text: str) -> float:
    """A Go duration as Docker writes it (``5s``, ``1m30s``, ``500ms``), in seconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise DockerfileError(f"{text!r} is not a duration like 5s or 1m30s")
    return sum(float(number) * _SECONDS[unit] for number, unit in parts)


def _expand(value: str, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return env.get(name, match.group(0))

    return _VARIABLE.sub(substitute, value)
