"""The Dockerfile reader of the entry-point tests (pure logic)."""

from __future__ import annotations

import pytest

from tests.containers.dockerfile import (
    DockerfileError,
    Healthcheck,
    duration_s,
    env_assignments,
    final_stage,
    instructions,
    parse_healthcheck,
)

TWO_STAGES = """\
# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
ENV BUILD_ONLY=1
CMD ["build"]

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \\
    # a comment inside a continued instruction
    APP_PORT=8000 \\
    APP_URL=http://127.0.0.1:${APP_PORT}/
USER 10001:10001
HEALTHCHECK --interval=10s --timeout=5s \\
  CMD ["python", "-c", "print('ok')"]
CMD ["python", "-m", "app"]
"""


def test_instructions_join_continuations_and_drop_comments() -> None:
    found = instructions(TWO_STAGES)
    assert [keyword for keyword, _ in found] == [
        "FROM", "ENV", "CMD", "FROM", "ENV", "USER", "HEALTHCHECK", "CMD",
    ]  # fmt: skip
    assert found[4][1].split() == [
        "PATH=/opt/venv/bin:$PATH",
        "APP_PORT=8000",
        "APP_URL=http://127.0.0.1:${APP_PORT}/",
    ]


def test_final_stage_is_the_last_one() -> None:
    stage = final_stage(TWO_STAGES)
    assert stage.base == "python:3.11-slim"
    assert "BUILD_ONLY" not in stage.env
    assert stage.env == {
        "PATH": "/opt/venv/bin:$PATH",  # the base image's PATH is not known here
        "APP_PORT": "8000",
        "APP_URL": "http://127.0.0.1:8000/",
    }
    assert stage.user == "10001:10001"
    assert stage.argv == ("python", "-m", "app")
    assert stage.healthcheck == Healthcheck(
        ("python", "-c", "print('ok')"), {"interval": "10s", "timeout": "5s"}
    )


def test_entrypoint_and_cmd_make_the_argv() -> None:
    stage = final_stage('FROM x:1\nENTRYPOINT ["tool"]\nCMD ["--flag", "1"]\n')
    assert stage.argv == ("tool", "--flag", "1")


def test_a_later_entrypoint_resets_cmd() -> None:
    stage = final_stage('FROM x:1\nCMD ["--flag"]\nENTRYPOINT ["tool"]\n')
    assert stage.argv == ("tool",)


@pytest.mark.parametrize("command", ["python -m app", '["python", 1]', "[]", '"python"'])
def test_shell_form_and_odd_commands_are_refused(command: str) -> None:
    with pytest.raises(DockerfileError, match="exec form"):
        final_stage(f"FROM x:1\nCMD {command}\n")


def test_env_forms() -> None:
    assert env_assignments('A=1 B="two words" C=$A', {}) == {"A": "1", "B": "two words", "C": "1"}
    assert env_assignments("LEGACY some value", {}) == {"LEGACY": "some value"}
    with pytest.raises(DockerfileError):
        env_assignments("A=1 B", {})


def test_healthcheck_none_and_defaults() -> None:
    assert parse_healthcheck("NONE") == Healthcheck(None)
    assert parse_healthcheck('CMD ["true"]').timeout_s == 30
    with pytest.raises(DockerfileError, match="no CMD"):
        parse_healthcheck('--timeout=5s ["true"]')
    with pytest.raises(DockerfileError, match="--name=value"):
        parse_healthcheck('--timeout 5s CMD ["true"]')


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("2.5s", 2.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 s", "s5", "5sx"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(DockerfileError):
        duration_s(text)


def test_no_from_and_dangling_continuation_are_errors() -> None:
    with pytest.raises(DockerfileError, match="no FROM"):
        final_stage('CMD ["x"]\n')
    with pytest.raises(DockerfileError, match="continuation"):
        instructions("FROM x:1\nRUN true \\\n")
