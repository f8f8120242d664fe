"""Helpers of the end-to-end tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Stack:
    api_url: str
    amqp_url: str
    key_prefix: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path
