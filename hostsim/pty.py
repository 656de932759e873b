"""The emulated modem on a pseudo-terminal, driven by an asyncio loop.

:class:`SimulatedModem` wires an :class:`~hostsim.modem.EmulatedModem` to a
:class:`PtyEndpoint`. The agent opens :attr:`PtyEndpoint.path` (or the stable symlink
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
import random
import termios
import tty
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hostsim.modem.faults import MAX_GARBAGE, ChunkedWriter, FaultPlan, garbage
from hostsim.modem.interpreter import EmulatedModem
from hostsim.modem.sending import SentSms, SubmitDecision
from hostsim.modem.settings import ModemConfig
from hostsim.wire import ByteLog, Direction, Pacer

if TYPE_CHECKING:
    from hostsim.link import EndpointFactory

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


class SimulatedModem:
    """One emulated modem wired to its pty (or to the line ``endpoint`` makes, e.g.
    :meth:`hostsim.link.LoopbackPorts.endpoint`): the gateway of one Sim.

    It is what the network delivers to (:class:`hostsim.cloud.network.Gateway`)
    and what tests drive: deliveries, one-shot faults (unplug, reset, garbage,
    hang) and waits. Everything runs on ``loop``; :meth:`deliver` must be
    called from it too. Waiting never polls: predicates are re-evaluated after
    every change the modem reports through ``on_change``.

    ``baud`` paces both directions at the serial line rate and ``byte_log`` records
    every chunk as it crosses (see :mod:`hostsim.wire`); unpaced by default.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: ModemConfig | None = None,
        *,
        link: str | os.PathLike[str] | None = None,
        faults: FaultPlan | None = None,
        rng: random.Random | None = None,
        endpoint: EndpointFactory = PtyEndpoint,
        baud: int | None = None,
        byte_log: ByteLog | None = None,
    ) -> None:
        self.modem = EmulatedModem(config, on_change=self._changed, faults=faults, rng=rng)
        self._waiters: set[asyncio.Future[None]] = set()
        self._listeners: list[Callable[[], None]] = []
        self._loop = loop
        self._link_path = link
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._byte_log = byte_log
        self._wire_listeners: list[Callable[[Direction, bytes], None]] = []
        self._to_te = Pacer(loop, baud, self._on_line_to_te)
        self._to_module = Pacer(loop, baud, self._on_line_to_module)
        self._writer = ChunkedWriter(loop, self._to_te.push, lambda: self.modem.faults)
        self._endpoint = endpoint
        self._pty = endpoint(loop, self._received, link=link)

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every change of the modem (exceptions logged)."""
        self._listeners.append(listener)

    def add_wire_listener(self, listener: Callable[[Direction, bytes], None]) -> None:
        """Call ``listener(direction, chunk)`` for every chunk as it crosses the line (after
        the pace, like the byte log); it must not block (exceptions logged)."""
        self._wire_listeners.append(listener)

    def _on_wire(self, direction: Direction, data: bytes) -> None:
        if self._byte_log is not None:
            self._byte_log.record(direction, self._pty.path, data)
        for listener in list(self._wire_listeners):
            try:
                listener(direction, data)
            except Exception:
                LOGGER.exception("wire listener %r failed", listener)

    def unplug(self) -> None:
        """USB unplug: the pty (and its symlink) disappears; the TE's port fails.

        The network holds SMS for this Sim until :meth:`replug`.
        """
        self._cancel("replug")
        if self._pty.closed:
            return
        LOGGER.info("modem on %s unplugged", self._pty.path)
        self._writer.clear()
        self._to_te.clear()
        self._to_module.clear()
        self._pty.close()
        self._changed()

    def replug(self) -> None:
        """USB replug: a new pty (often another /dev/pts/N) behind the same symlink,
        and the module boots again (settings at defaults, boot banner). Stored
        messages survive, as on a SIM."""
        self._cancel("replug")
        if not self._pty.closed:
            return
        self._pty = self._endpoint(self._loop, self._received, link=self._link_path)
        LOGGER.info("modem replugged on %s", self._pty.path)
        self.modem.reboot()

    @property
    def attached(self) -> bool:
        """The modem is on its port (False once closed or unplugged)."""
        return not self._pty.closed

    @property
    def registered(self) -> bool:
        """The module is registered to the network (see :attr:`EmulatedModem.registered`)."""
        return self.modem.registered

    @property
    def hung(self) -> bool:
        """The module is hung (:meth:`hang`): input swallowed, nothing answered."""
        return self.modem.hung

    @property
    def sim_ready(self) -> bool:
        """The SIM and SMS are ready (False for a while after :meth:`reset`)."""
        return self.modem.sim_ready

    def on_acknowledged(self, listener: Callable[[bool], None]) -> None:
        """Tell ``listener`` whether each ``+CMT`` that waited for ``AT+CNMA`` was
        acknowledged (:meth:`EmulatedModem.on_acknowledged`); the wait ends after
        :attr:`ModemConfig.ack_timeout` seconds."""
        self.modem.on_acknowledged(listener)

    def on_submit(self, decide: SubmitDecision) -> None:
        """The network's say on every SMS the module sends (:meth:`EmulatedModem.on_submit`)."""
        self.modem.on_submit(decide)

    @property
    def path(self) -> str:
        """The pty slave path, e.g. ``/dev/pts/3``."""
        return self._pty.path

    @property
    def link(self) -> Path | None:
        """The stable symlink to :attr:`path`, when one was asked for."""
        return self._pty.link

    @property
    def sent(self) -> list[SentSms]:
        """Messages the TE sent with ``AT+CMGS``, oldest first."""
        return self.modem.sent

    def deliver(
        self,
        sender: str,
        text: str,
        timestamp: datetime | None = None,
        *,
        sender_type: int | None = None,
    ) -> int | None:
        """A message from the network (see :meth:`EmulatedModem.deliver_sms`); URC flushed."""
        index = self.modem.deliver_sms(sender, text, timestamp=timestamp, sender_type=sender_type)
        self._pump()
        return index

    def deliver_concatenated(
        self,
        sender: str,
        text: str,
        *,
        order: Sequence[int] | None = None,
        reference: int | None = None,
        timestamp: datetime | None = None,
        sender_type: int | None = None,
    ) -> list[int | None]:
        """A long message as concatenated parts, in ``order`` (see
        :meth:`EmulatedModem.deliver_concatenated`); URCs flushed."""
        indexes = self.modem.deliver_concatenated(
            sender,
            text,
            order=order,
            reference=reference,
            timestamp=timestamp,
            sender_type=sender_type,
        )
        self._pump()
        return indexes

    def reboot(self) -> None:
        """Restart the module silently (see :meth:`EmulatedModem.reboot`)."""
        self.modem.reboot()
        self._pump()

    # ------------------------------------------------------------------ faults

    @property
    def faults(self) -> FaultPlan:
        """The persistent faults in force (:class:`hostsim.modem.faults.FaultPlan`)."""
        return self.modem.faults

    def set_faults(self, plan: FaultPlan | None = None, **changes: object) -> FaultPlan:
        """Replace the fault plan (``plan``, else the current one) with ``changes``
        applied; returns the new plan. ValueError for unknown names or bad values."""
        base = plan if plan is not None else self.modem.faults
        self.modem.faults = base.replace(**changes)
        LOGGER.info("faults of %s: %s", self._pty.path, self.modem.faults)
        self._changed()
        return self.modem.faults

    def unplug_for(self, seconds: float | None) -> None:
        """Unplug now; with ``seconds``, replug (a new pty behind the same link) that
        much later, else only on :meth:`replug`."""
        if seconds is not None and seconds < 0:
            raise ValueError("seconds must not be negative")
        self.unplug()
        if seconds is not None:
            self._later("replug", seconds, self.replug)

    def reset(self, not_ready_seconds: float = 0.0) -> None:
        """A reboot (possibly mid-command): settings back to defaults, the boot banner,
        then for ``not_ready_seconds`` the SIM and SMS are not ready (CME 14 / CMS 314)
        and the rest of the banner comes once they are."""
        if not_ready_seconds < 0:
            raise ValueError("not_ready_seconds must not be negative")
        self._cancel("ready")
        not_ready = not_ready_seconds > 0
        if not not_ready:
            self.modem.sim_ready = True  # a plain reboot finds the SIM (full banner)
        self.modem.reboot(not_ready=not_ready)
        if not_ready:
            self._later("ready", not_ready_seconds, self.modem.become_ready)
        self._pump()

    @property
    def output_pending(self) -> int:
        """Output bytes still queued by the chunking fault or the line's pace (not yet
        on the pty)."""
        return self._writer.pending + self._to_te.pending

    def garbage(self, count: int) -> bytes:
        """Put ``count`` seeded random bytes (line noise) on the line; returns them."""
        if not 0 <= count <= MAX_GARBAGE:
            raise ValueError(f"count must be between 0 and {MAX_GARBAGE}")
        data = garbage(self.modem.rng, count)
        self.inject(data)
        return data

    def hang(self, seconds: float | None = None) -> None:
        """Stop answering (input swallowed); resume after ``seconds`` (never when None,
        until :meth:`resume`)."""
        if seconds is not None and seconds < 0:
            raise ValueError("seconds must not be negative")
        self._cancel("resume")
        self.modem.hung = True
        LOGGER.info("modem on %s hung", self._pty.path)
        if seconds is not None:
            self._later("resume", seconds, self.resume)
        self._changed()

    def resume(self) -> None:
        """Answer again after :meth:`hang`."""
        self._cancel("resume")
        if self.modem.hung:
            self.modem.hung = False
            LOGGER.info("modem on %s answers again", self._pty.path)
            self._changed()

    def _later(self, name: str, seconds: float, action: Callable[[], None]) -> None:
        self._cancel(name)

        def fire() -> None:
            self._timers.pop(name, None)
            action()

        self._timers[name] = self._loop.call_later(seconds, fire)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def inject(self, data: bytes) -> None:
        """Write raw bytes to the TE as if the module had sent them."""
        self.modem.inject(data)
        self._pump()

    async def wait_until(self, predicate: Callable[[EmulatedModem], bool], timeout: float) -> None:
        """Return once ``predicate(modem)`` holds; TimeoutError after ``timeout`` seconds.

        Checked at once, then after every change (command line, send, delivery).
        """
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while not predicate(self.modem):
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.add(waiter)
                try:
                    await waiter
                finally:
                    self._waiters.discard(waiter)

    def close(self) -> None:
        """Close the pty (and its symlink) and cancel pending faults; pending waiters
        time out. Idempotent."""
        for name in list(self._timers):
            self._cancel(name)
        self._writer.clear()
        self._to_te.clear()
        self._to_module.clear()
        self._pty.close()

    def _received(self, data: bytes) -> None:
        self._to_module.push(data)

    def _on_line_to_module(self, data: bytes) -> None:
        self._on_wire(Direction.TO_MODULE, data)
        self.modem.feed(data)
        self._pump()

    def _pump(self) -> None:
        out = self.modem.data_to_send()
        if out:
            self._writer.write(out)

    def _on_line_to_te(self, data: bytes) -> None:
        self._on_wire(Direction.TO_TE, data)
        self._pty.write(data)

    def _changed(self) -> None:
        self._pump()
        if not self.modem.awaiting_ack:
            self._cancel("cnma")
        elif "cnma" not in self._timers:
            self._later("cnma", self.modem.config.ack_timeout, self.modem.ack_timeout)
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                LOGGER.exception("change listener %r failed", listener)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
