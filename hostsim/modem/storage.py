"""Message storage of the emulated modem: one :class:`MessageStorage` per memory.

A memory (``"SM"`` on the SIM, ``"ME"`` in the module) has a fixed capacity and
indices ``index_base .. index_base + capacity - 1``; a new message takes the
lowest free index, as real modules do. Messages are immutable records; a status
change replaces the record.

Edge cases:

* :meth:`MessageStorage.store` returns None when the memory is full (the caller
  decides what "memory full" means on the wire).
* Indices outside the range are "invalid" (``+CMS ERROR: 321`` upstream), an
  in-range index without a message is merely "empty": :meth:`MessageStorage.get`
  returns None for both; use :meth:`MessageStorage.in_range` to tell them apart.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import datetime

from device.errors import SmsFormatError
from device.sms.pdu import Concat
from device.sms.textmode import format_scts


class Status(enum.Enum):
    """Message status with its text-mode name and its PDU-mode number (27.005 §3.1)."""

    REC_UNREAD = ("REC UNREAD", 0)
    REC_READ = ("REC READ", 1)
    STO_UNSENT = ("STO UNSENT", 2)
    STO_SENT = ("STO SENT", 3)

    @property
    def text(self) -> str:
        """The text-mode name, e.g. ``"REC UNREAD"``."""
        return self.value[0]

    @property
    def number(self) -> int:
        """The PDU-mode value 0..3."""
        return self.value[1]

    @property
    def received(self) -> bool:
        """True for REC UNREAD / REC READ (mobile terminated), False for stored MO."""
        return self in (Status.REC_UNREAD, Status.REC_READ)

    @classmethod
    def from_text(cls, text: str) -> Status:
        """The status for a text-mode name (case-insensitive); ValueError when unknown."""
        wanted = text.strip().upper()
        for status in cls:
            if status.text == wanted:
                return status
        raise ValueError(f"unknown message status {text!r}")

    @classmethod
    def from_number(cls, number: int) -> Status:
        """The status for a PDU-mode value 0..3; ValueError otherwise."""
        for status in cls:
            if status.number == number:
                return status
        raise ValueError(f"unknown message status number {number}")


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What an SMS-STATUS-REPORT adds to a message (TS 23.040 §9.2.2.3).

    ``reference`` is the TP-MR of the submit it reports on (0–255),
    ``discharge`` TP-DT (aware, like every time stamp here), ``status`` TP-ST
    (0: received by the recipient; 9.2.3.15 lists the others).
    """

    reference: int
    discharge: datetime
    status: int = 0


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message in a memory.

    ``address`` is the originator (received) or destination (stored MO);
    ``timestamp`` must be timezone-aware (the SCTS carries a zone);
    ``dcs`` is the TP-DCS byte: 0 for GSM 7-bit, 8 for UCS2, 4 for 8-bit data
    (``text`` then holds one latin-1 character per octet). ``concat`` marks one
    part of a concatenated message: ``text`` is then this part's text only, and
    the part carries a user-data header when rendered (see :mod:`hostsim.modem.pdumode`).
    ``srr`` is TP-SRR of a stored MO message (a status report is asked for when it is
    sent with ``AT+CMSS``). ``report`` makes the message a status report: ``address``
    is then TP-RA (the recipient), ``timestamp`` TP-SCTS, ``text`` empty.
    """

    status: Status
    address: str
    text: str
    timestamp: datetime
    dcs: int = 0
    concat: Concat | None = None
    srr: bool = False
    report: StatusReport | None = None
    #: The address's type-of-address octet (TS 23.040 §9.1.2.5) when it is not the
    #: one its form suggests (145 for ``+…``, 129 for digits, 208 for other text):
    #: a sender typed alphanumeric or national whatever its characters.
    address_type: int | None = None
    #: PDU mode: octets printed after the TPDU (``FF``: the rest of the SIM record, TS
    #: 51.011 §10.5.3, as gammu's tests/at-sms/32.dump shows), or, negative, octets cut
    #: off its end (gammu tests/at-sms/41.dump). ``<length>`` is not changed by either.
    printed_extra: int = 0

    def __post_init__(self) -> None:
        # Time stamps must be printable as an SCTS (aware, 2000-2099, whole
        # quarter hours): refuse them here rather than fail when read.
        try:
            format_scts(self.timestamp)
            if self.report is not None:
                format_scts(self.report.discharge)
        except SmsFormatError as exc:
            raise ValueError(f"StoredMessage time stamp: {exc}") from exc

    def with_status(self, status: Status) -> StoredMessage:
        """A copy with another status."""
        return dataclasses.replace(self, status=status)


#: Statuses each ``AT+CMGD`` delflag 1..4 deletes (27.005 §3.5.4); 0 means "the index only".
DELFLAG_STATUSES: dict[int, frozenset[Status]] = {
    1: frozenset({Status.REC_READ}),
    2: frozenset({Status.REC_READ, Status.STO_SENT}),
    3: frozenset({Status.REC_READ, Status.STO_SENT, Status.STO_UNSENT}),
    4: frozenset(Status),
}


class MessageStorage:
    """A fixed-capacity memory of messages, addressed by index."""

    def __init__(self, name: str, capacity: int, index_base: int = 0) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if index_base < 0:
            raise ValueError("index_base must not be negative")
        self.name = name
        self.capacity = capacity
        self.index_base = index_base
        self._slots: dict[int, StoredMessage] = {}

    def __repr__(self) -> str:
        return f"MessageStorage({self.name!r}, used={self.used}, total={self.total})"

    @property
    def used(self) -> int:
        """How many slots hold a message."""
        return len(self._slots)

    @property
    def total(self) -> int:
        """The capacity."""
        return self.capacity

    @property
    def is_full(self) -> bool:
        """True when no slot is free."""
        return self.used >= self.capacity

    @property
    def first_index(self) -> int:
        """The lowest valid index."""
        return self.index_base

    @property
    def last_index(self) -> int:
        """The highest valid index."""
        return self.index_base + self.capacity - 1

    def in_range(self, index: int) -> bool:
        """True when ``index`` addresses a slot of this memory (empty or not)."""
        return self.first_index <= index <= self.last_index

    def indices(self) -> list[int]:
        """Indices that hold a message, ascending."""
        return sorted(self._slots)

    def store(self, message: StoredMessage) -> int | None:
        """Put ``message`` in the lowest free slot; its index, or None when full."""
        for index in range(self.first_index, self.last_index + 1):
            if index not in self._slots:
                self._slots[index] = message
                return index
        return None

    def get(self, index: int) -> StoredMessage | None:
        """The message at ``index``; None when the slot is empty or out of range."""
        return self._slots.get(index)

    def set_status(self, index: int, status: Status) -> None:
        """Change the status of the message at ``index``; KeyError when there is none."""
        self._slots[index] = self._slots[index].with_status(status)

    def delete(self, index: int) -> bool:
        """Remove the message at ``index``; False when there was none."""
        return self._slots.pop(index, None) is not None

    def delete_by_flag(self, index: int | None, delflag: int) -> list[int]:
        """``AT+CMGD`` semantics; the indices deleted.

        delflag 0 deletes ``index`` only (an empty in-range slot is not an
        error); 1..4 ignore ``index`` and delete by status (see
        :data:`DELFLAG_STATUSES`). ValueError for a delflag outside 0..4, or for
        delflag 0 with a missing or out-of-range index.
        """
        if delflag == 0:
            if index is None or not self.in_range(index):
                raise ValueError(f"invalid memory index {index!r}")
            return [index] if self.delete(index) else []
        statuses = DELFLAG_STATUSES.get(delflag)
        if statuses is None:
            raise ValueError(f"invalid delflag {delflag}")
        doomed = [i for i, msg in sorted(self._slots.items()) if msg.status in statuses]
        for i in doomed:
            del self._slots[i]
        return doomed

    def list(self, status: Status | None = None) -> list[tuple[int, StoredMessage]]:
        """(index, message) pairs in index order, only ``status`` ones unless None (all)."""
        return [
            (i, msg)
            for i, msg in sorted(self._slots.items())
            if status is None or msg.status is status
        ]
