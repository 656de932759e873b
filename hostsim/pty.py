"""A pseudo-terminal endpoint for the emulated modem, driven by an asyncio loop.

The agent opens :attr:`PtyEndpoint.path` (or the stable symlink
:attr:`PtyEndpoint.link`) like a serial port; the simulator owns the master.

Edge cases:

* The slave fd stays open in this process for the endpoint's lifetime, so the
  master never reads EIO when the agent closes and reopens the port. Bytes
  written while nobody has the port open wait in the slave's input queue.
* The slave is raw (no echo, no CR/LF translation, 8 bits): the modem's own
  echo is the only echo.
* Output the kernel cannot take at once is buffered (at most
  :data:`MAX_PENDING` bytes, oldest dropped with a warning) and written when
  the master becomes writable.
* The symlink is created atomically (temporary name + rename), replacing an
  existing one; :meth:`PtyEndpoint.close` removes it only if it still points
  at this pty. ``close`` is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import termios
import tty
from collections.abc import Callable
from pathlib import Path

LOGGER = logging.getLogger(__name__)

#: Most unwritten output kept while the TE does not read.
MAX_PENDING = 1 << 20
_READ_SIZE = 4096


class PtyEndpoint:
    """One pty pair; ``on_data`` receives every chunk the TE writes."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_data: Callable[[bytes], None],
        *,
        link: str | os.PathLike[str] | None = None,
    ) -> None:
        self._loop = loop
        self._on_data = on_data
        self._pending = bytearray()
        self._writing = False
        self._closed = False
        self.link: Path | None = None
        master, slave = os.openpty()
        try:
            tty.setraw(slave, termios.TCSANOW)
            attrs = termios.tcgetattr(slave)
            attrs[3] &= ~(termios.ECHO | termios.ECHONL)
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            os.set_blocking(master, False)
            self.path = os.ttyname(slave)
            if link is not None:
                self.link = Path(link)
                self._make_link(self.link, self.path)
            loop.add_reader(master, self._readable)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master = master
        self._slave = slave
        LOGGER.info("pty %s ready%s", self.path, f" (link {self.link})" if self.link else "")

    @staticmethod
    def _make_link(link: Path, target: str) -> None:
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, link)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def _readable(self) -> None:
        try:
            data = os.read(self._master, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return
            LOGGER.warning("read from pty %s failed: %s", self.path, exc)
            return
        if data:
            LOGGER.debug("pty %s <- %r", self.path, data)
            self._on_data(data)

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the TE; never blocks. Ignored after :meth:`close`."""
        if self._closed or not data:
            return
        LOGGER.debug("pty %s -> %r", self.path, data)
        self._pending += data
        if len(self._pending) > MAX_PENDING:
            dropped = len(self._pending) - MAX_PENDING
            del self._pending[:dropped]
            LOGGER.warning("pty %s: TE not reading, %d bytes dropped", self.path, dropped)
        self._flush()

    def _flush(self) -> None:
        while self._pending:
            try:
                written = os.write(self._master, self._pending)
            except BlockingIOError:
                break
            except OSError as exc:
                LOGGER.warning("write to pty %s failed: %s", self.path, exc)
                self._pending.clear()
                break
            del self._pending[:written]
        if self._pending and not self._writing:
            self._loop.add_writer(self._master, self._flush)
            self._writing = True
        elif not self._pending and self._writing:
            self._loop.remove_writer(self._master)
            self._writing = False

    def close(self) -> None:
        """Stop watching the fds, close them and remove the symlink; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if not self._loop.is_closed():
            self._loop.remove_reader(self._master)
            if self._writing:
                self._loop.remove_writer(self._master)
        self._writing = False
        os.close(self._master)
        os.close(self._slave)
        if self.link is not None:
            with contextlib.suppress(OSError):
                if os.readlink(self.link) == self.path:
                    self.link.unlink()
        LOGGER.info("pty %s closed", self.path)
