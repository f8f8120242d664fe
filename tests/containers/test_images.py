"""What every service image must be, beyond hadolint: checked on the Dockerfiles (no Docker)."""

from __future__ import annotations

import re

import pytest

from tests.containers.dockerfile import final_stage, instructions
from tests.containers.support import IMAGE_VENV_BIN, dockerfile

SERVICES = ["consumer", "api", "simulator"]
#: Services a client or an orchestrator waits for; the simulator is a one-shot load generator.
SERVERS = ["consumer", "api"]
#: A base image pinned to a full release (``python:3.11.14-slim-trixie``) or to a digest.
PINNED = re.compile(r":\d+\.\d+\.\d+\b|@sha256:[0-9a-f]{64}$")


def _stage_bases(service: str) -> list[str]:
    text = dockerfile(service).read_text(encoding="utf-8")
    return [args.split()[0] for keyword, args in instructions(text) if keyword == "FROM"]


@pytest.mark.parametrize("service", SERVICES)
def test_multi_stage_on_one_pinned_base(service: str) -> None:
    bases = _stage_bases(service)
    assert len(bases) >= 2, "a build stage makes the wheels, the final stage installs them"
    # Wheels with compiled parts are built for one Python ABI: build and runtime must agree.
    assert len(set(bases)) == 1, bases
    assert PINNED.search(bases[0]), f"{bases[0]} is not pinned to a release or a digest"


@pytest.mark.parametrize("service", SERVICES)
def test_runs_as_a_numeric_non_root_user(service: str) -> None:
    user = final_stage(dockerfile(service).read_text(encoding="utf-8")).user
    assert user is not None
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), user
    assert int(uid) != 0, user
    assert gid.isdigit(), f"{user}: name the group too (without a passwd entry it is 0, root)"
    assert int(gid) != 0, user


@pytest.mark.parametrize("service", SERVICES)
def test_command_runs_from_the_image_venv(service: str) -> None:
    stage = final_stage(dockerfile(service).read_text(encoding="utf-8"))
    assert stage.argv, "an exec-form CMD or ENTRYPOINT"
    # `python` and the console scripts resolve to the venv the wheels were installed into.
    assert stage.env["PATH"].split(":")[0] == IMAGE_VENV_BIN


@pytest.mark.parametrize("service", SERVERS)
def test_servers_have_a_timed_healthcheck(service: str) -> None:
    check = final_stage(dockerfile(service).read_text(encoding="utf-8")).healthcheck
    assert check is not None
    assert check.argv is not None
    assert {"interval", "timeout", "start-period"} <= set(check.options), check.options


def test_consumer_healthcheck_is_its_check_command() -> None:
    check = final_stage(dockerfile("consumer").read_text(encoding="utf-8")).healthcheck
    assert check is not None
    assert check.argv == ("python", "-m", "ev_consumer", "--check")


def test_simulator_says_it_has_no_healthcheck() -> None:
    check = final_stage(dockerfile("simulator").read_text(encoding="utf-8")).healthcheck
    assert check is not None
    assert check.argv is None
