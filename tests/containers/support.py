"""Run an image's own command line on this machine: its final stage's argv and ENV, with the
executables of this test's venv standing in for the image's ``/opt/venv``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.containers.dockerfile import FinalStage, final_stage

ROOT = Path(__file__).resolve().parents[2]
#: Where the images install their venv; its bin is first on the image's PATH.
IMAGE_VENV_BIN = "/opt/venv/bin"
#: What `docker stop` and compose allow between SIGTERM and SIGKILL.
STOP_GRACE_S = 10.0


def dockerfile(service: str) -> Path:
    return ROOT / "services" / service / "Dockerfile"


def image(service: str) -> FinalStage:
    """The final stage of ``services/<service>/Dockerfile``."""
    return final_stage(dockerfile(service).read_text(encoding="utf-8"))


def venv_bin() -> Path:
    """The bin directory of the venv running the tests, where the services are installed."""
    return Path(sys.executable).parent


def container_env(stage: FinalStage, home: Path, settings: dict[str, str]) -> dict[str, str]:
    """The environment a container of ``stage`` starts with, here: the image's ENV, this venv
    instead of the image's on PATH, then ``settings`` as compose's ``environment:`` would give
    them. Nothing else from the test's own environment leaks in."""
    env = {name: value for name, value in stage.env.items() if name != "PATH"}
    env["PATH"] = os.pathsep.join([str(venv_bin()), os.defpath])
    env["HOME"] = str(home)
    return {**env, **settings}


def resolve(argv: tuple[str, ...], env: dict[str, str]) -> list[str]:
    """``argv`` with its executable found on ``env``'s PATH, as the container would find it."""
    executable = shutil.which(argv[0], path=env["PATH"])
    assert executable is not None, f"{argv[0]!r} is not on PATH {env['PATH']!r}"
    return [executable, *argv[1:]]


def redis_settings(redis_url: str, key_prefix: str) -> dict[str, str]:
    """The REDIS_* variables of the services for ``redis_url``, under ``key_prefix``."""
    import redis  # only here: the static checks of this suite run without the services installed

    target = redis.connection.parse_url(redis_url)  # type: ignore[no-untyped-call]
    settings = {
        "REDIS_HOST": str(target.get("host", "127.0.0.1")),
        "REDIS_PORT": str(target.get("port", 6379)),
        "REDIS_DB": str(target.get("db", 0)),
        "REDIS_KEY_PREFIX": key_prefix,
    }
    if target.get("password"):
        settings["REDIS_PASSWORD"] = str(target["password"])
    return settings


class ServiceProcess:
    """One service started from its image's command line, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def assert_running(self) -> None:
        code = self.process.poll()
        assert code is None, f"{self.name} exited {code}:\n{self.log()}"

    def stop(self) -> int:
        """SIGTERM, as `docker stop` sends; the exit status, or a failure if it takes longer
        than Docker waits before SIGKILL."""
        self.assert_running()
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} did not stop within {STOP_GRACE_S:g} s of SIGTERM:\n{self.log()}"
            ) from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class Launcher:
    """Starts services as their images would; whatever is still running at the end is killed."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[ServiceProcess] = []

    def env(self, service: str, settings: dict[str, str]) -> dict[str, str]:
        return container_env(image(service), self.workdir, settings)

    def start(self, service: str, settings: dict[str, str]) -> ServiceProcess:
        """``services/<service>``'s image command, with ``settings`` over the image's ENV."""
        env = self.env(service, settings)
        argv = resolve(image(service).argv, env)
        process = ServiceProcess(service, argv, env, self.workdir)
        self.started.append(process)
        return process

    def close(self) -> None:
        for process in self.started:
            process.kill()


def healthcheck(stage: FinalStage, env: dict[str, str]) -> tuple[bool, str]:
    """Run the image's HEALTHCHECK command once, as Docker would: passed, and what it printed.
    A check still running after the HEALTHCHECK's ``--timeout`` has failed."""
    check = stage.healthcheck
    assert check is not None, "the image declares no HEALTHCHECK"
    assert check.argv is not None, "the image's HEALTHCHECK is NONE"
    try:
        done = subprocess.run(
            resolve(check.argv, env),
            env=env,
            capture_output=True,
            text=True,
            timeout=check.timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"no answer within {check.timeout_s:g} s"
    return done.returncode == 0, done.stdout + done.stderr
