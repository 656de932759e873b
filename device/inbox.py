"""The inbox pipeline: read -> journal -> delete (the "nothing lost" rule).

Messages reach the agent three ways, and all take the same path:

- ``+CMTI: <mem>,<index>`` indications: the index is read (``AT+CMGR``);
- a drain of the whole storage (``AT+CMGL``): after every bring-up, after a
  malformed ``+CMTI`` or an unreadable index, and on every safety sweep (for
  messages whose ``+CMTI`` never came); when the module answers the listing
  with an error, the storage is read index by index instead;
- ``+CMT`` direct delivery (the module's ``+CNMI`` is not ours any more): the
  message comes in the indication itself and has no storage index; it is
  journaled, and then the modem is re-initialised so that indications go
  through storage again.

Each message is committed to the journal first and deleted from the modem
second, so a crash in between leaves it in storage (and the journal's
deduplication keeps the next read from running it twice). A command (an allowed
sender's message in storage) is committed without a sync and left on the modem:
the executor's start, synced, makes it durable, and it is deleted only once its
row is settled -- finished and its reply sent, failed for good, or none
(:meth:`Inbox.delete_settled`, after the outbox's flush: reply before delete).
Refused and undecodable messages, parts, and ``+CMT`` deliveries are committed
synced and deleted (or marked) at once. Before anything is
journaled the restart watch is consulted, and before a message is journaled as
undecodable the modem's settings are checked: reading with a character set a
restarted module forgot would garble it, and it is re-read after the
re-initialisation instead. Parts of a concatenated message are held in the
journal (committed before the delete, like any message) until the last part is
in, whatever order they came in; parts that stop coming are journaled
incomplete after ``concat_timeout``. A message the module refuses to read
(``AT+CMGR`` and the listing answer an error, or its answer comes damaged)
blocks nothing: the others are read, and after :data:`MAX_READ_TRIES` failed
reads (across sweeps) it is journaled UNDECODABLE with its storage, index and
the error, and deleted — the row is what is kept of it, and a corrupt record
left in storage would fail every listing and take a slot for good. A sender
outside ``allowed_senders`` is journaled REFUSED (and deleted, and counted); so
is an allowed sender whose address type or printed form does not fit
(:mod:`device.admission`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Protocol

from device.admission import refusal
from device.at.codec import Urc
from device.at.errors import CommandError, ResponseDamaged
from device.crash import CrashPoints
from device.journal import InboxRow, InboxState
from device.journal.worker import AsyncJournal
from device.modem import Modem, StoredSms, UndecodableSms, parse_cmti
from device.observer import AgentObserver, Counters, notify

LOGGER = logging.getLogger(__name__)

#: Failed reads of one stored message (``AT+CMGR``, or the listing it is in) before it
#: is given up: journaled UNDECODABLE with its storage, index and the error, then deleted.
MAX_READ_TRIES = 3


class RestartWatch(Protocol):
    """What the inbox needs from restart detection (the supervisor's)."""

    def needed(self, reason: str) -> None:
        """Ask for a re-initialisation (the first reason is kept)."""

    def check(self) -> None:
        """Raise when a restart was seen: nothing more may be journaled or deleted."""


class IndexReader:
    """Reads the storage one index at a time, and gives up a message the module will
    not give: :data:`MAX_READ_TRIES` failed reads of one index (error or damaged
    answers, counted across sweeps; a "busy" answer is no try) journal it UNDECODABLE
    with its storage, index and the error, and delete it (or, when the delete is
    refused too, skip it from then on)."""

    def __init__(
        self,
        journal: AsyncJournal,
        *,
        restart: RestartWatch,
        counters: Counters,
        observer: AgentObserver,
        stop: asyncio.Event,
    ) -> None:
        self.journal = journal
        self._restart = restart
        self._counters = counters
        self._observer = observer
        self._stop = stop
        #: Failed reads so far, per (storage, index) not yet given up.
        self._failures: dict[tuple[str, int], int] = {}
        #: Given up, but the module refused to delete them too: not read again.
        self._skipped: set[tuple[str, int]] = set()

    async def read_each(self, modem: Modem) -> tuple[list[StoredSms | UndecodableSms], list[int]]:
        """Every received message in the storage, read index by index; with the indices
        still occupied (a message, or one that failed to read and is still there)."""
        storage = modem.storage
        messages: list[StoredSms | UndecodableSms] = []
        present: list[int] = []
        for index in await modem.storage_indices():
            if self._stop.is_set():
                break
            message, occupied = await self.read(modem, storage, index)
            if message is not None:
                messages.append(message)
            if occupied:
                present.append(index)
        return messages, present

    async def read(
        self, modem: Modem, storage: str, index: int
    ) -> tuple[StoredSms | UndecodableSms | None, bool]:
        """Read one index: the message (None when empty or not a received one) and
        whether the index is still occupied.

        An error answer (or a damaged one) counts a failed try; the
        :data:`MAX_READ_TRIES`-th gives the message up (:meth:`_give_up`). A "busy"
        error is no try and propagates.
        """
        key = (storage, index)
        if key in self._skipped:
            return None, True
        try:
            message = await modem.read(storage, index)
        except (CommandError, ResponseDamaged) as exc:
            # Damaged: a line of the answer was lost; a failed try like an error answer.
            if isinstance(exc, CommandError) and exc.busy:
                raise
            tries = self._failures.get(key, 0) + 1
            self._failures[key] = tries
            LOGGER.warning("cannot read %s index %d (try %d of %d): %s", storage, index, tries,
                           MAX_READ_TRIES, exc)  # fmt: skip
            if tries < MAX_READ_TRIES:
                return None, True
            return None, not await self._give_up(modem, storage, index, exc)
        self._failures.pop(key, None)
        return message, message is not None

    async def _give_up(
        self, modem: Modem, storage: str, index: int, exc: CommandError | ResponseDamaged
    ) -> bool:
        """Journal an unreadable message with what is known (storage, index, the error),
        then delete it: a record the module cannot read fails the listing, and takes a
        slot, on every sweep. True when it was deleted; else it is skipped from now on
        (left on the modem, its row still marked so)."""
        await settings_checked(modem, self._restart, "before giving a message up")
        self._restart.check()
        del self._failures[(storage, index)]
        reason = f"unreadable after {MAX_READ_TRIES} tries: {exc}"
        row, new = await self.journal.record_incoming(
            sender="",
            timestamp=None,
            text="",
            storage=storage,
            index=index,
            state=InboxState.UNDECODABLE,
            error=reason,
        )
        if new:
            self._counters.unreadable += 1
            LOGGER.error("inbox %d: %s index %d given up: %s", row.id, storage, index, reason)
            notify(self._observer.received, row)
        try:
            await modem.delete(storage, index)
        except CommandError as delete_error:
            LOGGER.error("cannot delete unreadable %s index %d either (%s); skipping it",
                         storage, index, delete_error)  # fmt: skip
            self._skipped.add((storage, index))
            return False
        await self.journal.mark_deleted(row.id)
        return True


async def settings_checked(modem: Modem, restart: RestartWatch, when: str) -> None:
    """Raise (through ``restart``) when the settings changed under us (a restart without
    banner): what was read is then read again after the re-initialisation."""
    changed = await modem.settings_intact()
    if changed is not None:
        restart.needed(f"settings lost ({changed}) {when}")
        restart.check()


class Inbox:
    """Takes messages off the modem into the journal; woken by indications."""

    def __init__(
        self,
        journal: AsyncJournal,
        *,
        allowed_senders: Collection[str],
        concat_timeout: float,
        restart: RestartWatch,
        counters: Counters,
        observer: AgentObserver,
        crash: CrashPoints,
        stop: asyncio.Event,
        wake: asyncio.Event,
    ) -> None:
        self.journal = journal
        #: Senders whose commands run (replaced by a configuration reload).
        self.allowed = allowed_senders
        self._concat_timeout = concat_timeout
        self._restart = restart
        self._counters = counters
        self._observer = observer
        self._crash = crash
        self._stop = stop
        self._wake = wake
        self._indications: list[tuple[str, int]] = []
        self._direct: list[Urc] = []
        #: True when the whole storage is to be read (set after every bring-up).
        self.drain_needed = True
        self._reader = IndexReader(
            journal, restart=restart, counters=counters, observer=observer, stop=stop
        )

    @property
    def waiting(self) -> bool:
        """True when indications, direct deliveries or a drain wait to be taken."""
        return bool(self._indications or self._direct or self.drain_needed)

    def on_urc(self, urc: Urc) -> bool:
        """Take ``+CMTI``, ``+CMT`` and ``+CDSI``; False for any other indication."""
        if urc.name == "+CMTI":
            parsed = parse_cmti(urc.args)
            if parsed is None:
                LOGGER.warning("malformed +CMTI indication %r; draining storage instead", urc.text)
                self.drain_needed = True
            else:
                self._indications.append(parsed)
                notify(self._observer.indication, *parsed)
            self._wake.set()
        elif urc.name == "+CMT":
            # Direct delivery means +CNMI is not ours any more: take the message,
            # then re-initialise so that indications go through storage again.
            LOGGER.warning("direct delivery (+CMT) although +CMTI was configured: %r", urc.text)
            self._direct.append(urc)
            self._wake.set()
        elif urc.name == "+CDSI":
            LOGGER.info("status report stored: %s (left in storage)", urc.args)
        else:
            return False
        return True

    async def take(self, modem: Modem) -> None:
        """Take everything waiting: the drain first, then indications, then direct
        deliveries, each in arrival order; returns early when stopped."""
        if self.drain_needed:
            self.drain_needed = False
            await self._drain(modem)
        while self._indications and not self._stop.is_set():
            storage, index = self._indications.pop(0)
            await self._take(modem, storage, index)
        while self._direct and not self._stop.is_set():
            urc = self._direct.pop(0)
            await self._commit_and_delete(modem, modem.mode.direct(urc.args, urc.body or ""))

    async def expire_parts(self) -> None:
        """Multipart messages whose parts stopped coming: journaled incomplete, answered."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self._concat_timeout)
        for row in await self.journal.expire_parts(cutoff):
            LOGGER.warning("inbox %d: incomplete message from %r: %s", row.id, row.sender,
                           row.error)  # fmt: skip
            notify(self._observer.received, row)

    async def _drain(self, modem: Modem) -> None:
        """Take everything already in storage, oldest index first.

        A listing the module answers with an error (one corrupt record can fail it
        every time) does not stop the drain: the storage is then read index by index
        (:meth:`IndexReader.read_each`), so that one unreadable message costs itself only.
        """
        try:
            messages = await modem.list_received()
            present = [m.index for m in messages if m.index is not None]
        except CommandError as exc:
            if exc.busy:
                raise
            LOGGER.warning("listing the storage failed (%s); reading it index by index", exc)
            messages, present = await self._reader.read_each(modem)
            if self._stop.is_set():
                return  # not every index was read: ``present`` is not the whole storage
        if messages:
            LOGGER.info("%d message(s) waiting in storage", len(messages))
        cleared = await self.journal.forget_absent(modem.read_storage, present)
        if cleared:
            LOGGER.info("journal: %d row(s) no longer on the modem (deleted before a crash)",
                        cleared)  # fmt: skip
        for message in messages:
            await self._commit_and_delete(modem, message)

    async def _take(self, modem: Modem, storage: str, index: int) -> None:
        message, occupied = await self._reader.read(modem, storage, index)
        if message is None and occupied:
            LOGGER.info("draining storage after the failed read of %s index %d", storage, index)
            self.drain_needed = True
            return
        if message is None:
            LOGGER.info("%s index %d holds no received message (already handled?)", storage, index)
            return
        await self._commit_and_delete(modem, message)

    async def _commit_and_delete(self, modem: Modem, message: StoredSms | UndecodableSms) -> None:
        """Journal first, delete from the modem second: nothing is lost in between."""
        self._restart.check()
        self._crash.reached("after_read")
        if (
            isinstance(message, StoredSms)
            and message.concat is not None
            and self._held(modem, message)
        ):
            await self._commit_part(modem, message)
            return
        if isinstance(message, UndecodableSms):
            # Before calling a message undecodable, make sure it is not our settings
            # that changed under us (a restart without banner): then it is re-read.
            await settings_checked(modem, self._restart, "while reading a message")
            LOGGER.error(
                "undecodable message at %s index %s: %s",
                message.storage,
                message.index,
                message.reason,
            )
            row, new = await self.journal.record_incoming(
                sender="",
                timestamp=None,
                text=f"{message.raw_header}\n{message.raw_body}",
                storage=message.storage,
                index=message.index,
                state=InboxState.UNDECODABLE,
                error=message.reason,
            )
            if new:
                self._counters.undecodable += 1
        elif message.truncated:
            # Shorter than its length said: what was complete is kept, but never run.
            LOGGER.error("truncated message from %r at %s index %s", message.sender,
                         message.storage, message.index)  # fmt: skip
            row, new = await self.journal.record_incoming(
                sender=message.sender,
                timestamp=message.timestamp,
                text=message.text,
                storage=message.storage,
                index=message.index,
                state=InboxState.UNDECODABLE,
                error="truncated: the user data is shorter than its length says",
                notes=message.notes,
                sender_type=message.sender_type,
                concat=_part_text(message),
            )
            if new:
                self._counters.undecodable += 1
        else:
            state, reason = self._admission(modem, message)
            allowed = reason is None
            row, new = await self.journal.record_incoming(
                sender=message.sender,
                timestamp=message.timestamp,
                text=message.text,
                storage=message.storage,
                index=message.index,
                state=state,
                error=reason,
                notes=message.notes,
                sender_type=message.sender_type,
                concat=_part_text(message),
                # A command left on the modem until it is settled: the start that
                # follows is the durable commit (see the module docstring).
                durable=not (allowed and _stored(message)),
            )
            if new:
                self._counters.received += 1
                if not allowed:
                    self._counters.refused += 1
                    LOGGER.warning(
                        "refused message from %r (inbox %d): %s",
                        message.sender,
                        row.id,
                        reason,
                    )
        self._crash.reached("after_commit")
        if not _stored(message):
            await self.journal.mark_deleted(row.id)  # +CMT: nothing in storage to delete
        elif new and row.state is not InboxState.RECEIVED:
            await self._delete(modem, row)  # final at once: nothing more will happen to it
        # Otherwise it stays on the modem until its row is settled (delete_settled); a
        # message read again is deleted there too, once its row is settled.
        if new:
            LOGGER.info("inbox %d: %s from %r: %r", row.id, row.state.value, row.sender, row.text)
            notify(self._observer.received, row)
        if message.storage is None:
            self._restart.needed("+CMT direct delivery: indications must be set up again")

    async def delete_settled(self, modem: Modem) -> None:
        """Delete from the modem every message whose row is settled: finished, and its
        reply sent, failed for good, or none (reply before delete). Returns early when
        stopped; before each delete the restart watch is consulted."""
        for row in await self.journal.settled_on_modem():
            if self._stop.is_set():
                return
            self._restart.check()
            await self._delete(modem, row)

    async def _delete(self, modem: Modem, row: InboxRow) -> None:
        """``AT+CMGD`` of the row's own index, then the mark (not synced: lost on power
        failure, the stale mark is cleared by the next full listing)."""
        assert row.storage is not None and row.index is not None
        await modem.delete(row.storage, row.index)
        self._crash.reached("after_delete")
        await self.journal.mark_deleted(row.id, durable=False)

    def _held(self, modem: Modem, message: StoredSms) -> bool:
        """Whether a part joins the parts held for its message. A truncated part, and a
        part that names an allowed sender but fails its type or printed form (a spoof
        that would otherwise fill a slot of the genuine message), are journaled on their
        own instead (undecodable / refused): the message then expires incomplete."""
        if message.truncated:
            return False
        return message.sender not in self.allowed or self._admission(modem, message)[1] is None

    def _admission(self, modem: Modem, message: StoredSms) -> tuple[InboxState, str | None]:
        """RECEIVED for an allowed sender, by digits, address type and wire form
        (:mod:`device.admission`); REFUSED with the reason otherwise."""
        reason = refusal(message, self.allowed, modem.mode.charset, modem.mode.addresses_converted)
        return (InboxState.RECEIVED, None) if reason is None else (InboxState.REFUSED, reason)

    async def _commit_part(self, modem: Modem, message: StoredSms) -> None:
        """One part of a concatenated message: held in the journal (committed before the
        modem delete, like any message); the whole message is journaled once its last
        part is in, whatever order the parts came in."""
        concat = message.concat
        assert concat is not None
        new = await self.journal.add_part(
            sender=message.sender,
            reference=concat.reference,
            total=concat.total,
            sequence=concat.sequence,
            text=message.text,
            timestamp=message.timestamp,
            notes=message.notes,
        )
        if message.storage is not None and message.index is not None:
            await modem.delete(message.storage, message.index)
        LOGGER.info("part %d/%d (reference %d) from %r%s", concat.sequence, concat.total,
                    concat.reference, message.sender, "" if new else " again: ignored")  # fmt: skip
        state, reason = self._admission(modem, message)
        row = await self.journal.complete_multipart(
            sender=message.sender,
            reference=concat.reference,
            total=concat.total,
            state=state,
            error=reason,
            sender_type=message.sender_type,
        )
        if row is not None:
            self._counters.received += 1
            LOGGER.info("inbox %d: %d-part message from %r: %r", row.id, concat.total,
                        row.sender, row.text)  # fmt: skip
            notify(self._observer.received, row)


def _stored(message: StoredSms | UndecodableSms) -> bool:
    """Whether the message is in the modem's storage (not a ``+CMT`` delivery)."""
    return message.storage is not None and message.index is not None


def _part_text(message: StoredSms) -> str | None:
    """``"ref/total/seq"`` of a part journaled on its own, None for a single message."""
    c = message.concat
    return None if c is None else f"{c.reference}/{c.total}/{c.sequence}"


__all__ = ["MAX_READ_TRIES", "Inbox", "IndexReader", "RestartWatch", "settings_checked"]
