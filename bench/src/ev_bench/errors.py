"""The harness's one error root: a benchmark that cannot run says why in one line."""

from __future__ import annotations


class BenchError(Exception):
    """A stage could not run or could not finish (missing tool, service not ready, timeout)."""
