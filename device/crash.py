"""Test hook: crash points, so that the chaos tests can kill the agent at every step.

With ``SMSCMD_CRASH_AT=<name>`` in the environment (read once, when the agent is
built) the process kills itself with SIGKILL the first time it reaches the step
of that name; an unknown name never matches, and without the variable every
crash point is a no-op.
"""

from __future__ import annotations

import logging
import os
import signal

LOGGER = logging.getLogger(__name__)

#: The environment variable naming the step at which the process kills itself.
CRASH_ENV = "SMSCMD_CRASH_AT"
#: The steps, in the order of one receive/reply cycle.
CRASH_POINTS = (
    "after_read",
    "after_commit",
    "after_start",
    "after_handler",
    "after_send",
    "after_delete",
)


class CrashPoints:
    """The crash point chosen in the environment (or none)."""

    def __init__(self, chosen: str | None = None) -> None:
        self.chosen = chosen

    @classmethod
    def from_env(cls) -> CrashPoints:
        return cls(os.environ.get(CRASH_ENV) or None)

    def reached(self, name: str) -> None:
        """SIGKILL the process when ``name`` is the chosen step; otherwise nothing."""
        if self.chosen == name:
            LOGGER.critical("crash point %s reached: SIGKILL (SMSCMD_CRASH_AT)", name)
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["CRASH_ENV", "CRASH_POINTS", "CrashPoints"]
