"""Capped exponential backoff with jitter, for reconnects and retried batches."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    """Delays growing from ``initial`` by ``factor`` up to ``maximum``; reset after a success.

    Each delay is drawn uniformly from the upper half of the current step, so that many clients
    restarted together (e.g. by a broker restart) do not reconnect in lockstep.
    """

    initial: float
    maximum: float
    factor: float = 2.0
    attempts: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one attempt."""
        step = min(self.maximum, self.initial * self.factor ** min(self.attempts, 64))
        self.attempts += 1
        return random.uniform(step / 2, step)

    def reset(self) -> None:
        """Start again from ``initial``, after something worked."""
        self.attempts = 0
