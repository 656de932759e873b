"""Why a serial port cannot be used, in one line an operator can act on.

:func:`check_port` opens the port the way the agent will (read/write, no
controlling terminal, non-blocking) and tries the advisory lock pyserial's
``exclusive=True`` takes (``flock(LOCK_EX | LOCK_NB)``), then lets go at once.
It raises :class:`PortError` for: a missing path, permission denied (naming the
owner, group and mode, with the ``dialout`` / ``DeviceAllow=`` hint), a path
that is not a terminal ("not a serial port"), and a port another process holds.
Whether the holder is *the agent* is the caller's question (it asks the control
socket): this module knows nothing of smscmd's processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os

from device.errors import SmscmdError, ownership

LOGGER = logging.getLogger(__name__)


class PortError(SmscmdError):
    """The serial port cannot be opened for an ordinary reason (the message says which)."""


class PortMissing(PortError):
    """The path does not exist (yet: a USB modem may still be enumerating)."""


class PortBusy(PortError):
    """Another process holds the port's exclusive lock."""


def check_port(port: str) -> None:
    """Raise PortError when ``port`` cannot be used as the modem's AT port; else return."""
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise PortMissing(
            f"cannot open {port}: it does not exist (is the modem plugged in?)"
        ) from None
    except PermissionError:
        raise PortError(
            f"cannot open {port}: permission denied{ownership(port)}; read and write are needed: "
            "add the user to the port's group (usually dialout), or under systemd allow the "
            "device in the unit's DeviceAllow="
        ) from None
    except OSError as exc:
        raise PortError(f"cannot open {port}: {exc.strerror or exc}") from None
    try:
        if not os.isatty(fd):
            raise PortError(f"cannot open {port}: not a serial port (not a terminal)")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PortBusy(f"cannot open {port}: it is in use by another program") from None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
