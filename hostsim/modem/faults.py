"""Fault injection for hostsim: what a misbehaving module or line does to the TE.

A :class:`FaultPlan` holds the *persistent* faults of one modem (frozen; swap
it with :meth:`hostsim.pty.SimulatedModem.set_faults` at any time). Each
field is declared once, with its help text, value name and range check: the
CLI's ``--fault-*`` flags, the ``/_hostsim/`` form parsing and the route docs
are generated from those declarations (``hostsim run --help`` lists them).
Chunked output is scheduled on the loop by :class:`ChunkedWriter`, never
blocking.

One-shot faults (reset, unplug, garbage, hang) live on
:class:`hostsim.pty.SimulatedModem`. Every random choice comes from the
modem's ``random.Random``, seeded from :class:`hostsim.sim.HostSim`'s seed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hostsim.modem.storage import MessageStorage

LOGGER = logging.getLogger(__name__)

#: Vendor URCs of a flood, ``{rssi}`` filled from the rng.
FLOOD_URCS = (
    '+QIND: "csq",{rssi},99',
    '+QIND: "act","LTE"',
    '+QIND: "csq",{rssi},99',
    "+QIND: 0,1",
)
#: The bogus ``+CMTI`` kinds :attr:`FaultPlan.invalid_cmti` picks from.
INVALID_CMTI_KINDS = ("negative", "other-memory", "deleted")
#: Most bytes one garbage burst may hold.
MAX_GARBAGE = 1 << 16
#: The length of the line :attr:`FaultPlan.overlong_line` prints: beyond any real
#: SMS line (a PDU line is at most 2 × 176 hex digits) and the agent's 4096-byte bound.
OVERLONG_BYTES = 5000
#: Response headers followed by a message body line.
_BODY_HEADERS = ("+CMGR:", "+CMGL:")


def _at_least(low: float) -> Callable[[str, float], str | None]:
    return lambda name, value: None if value >= low else f"{name} must be 0 (off) or positive"


def _between(low: float, high: float, what: str) -> Callable[[str, float], str | None]:
    return lambda name, value: None if low <= value <= high else f"{name} must be {what}"


def _fault(
    default: object,
    help_text: str,
    *,
    metavar: str | None = None,
    check: Callable[[str, float], str | None] | None = None,
) -> Any:
    """A :class:`FaultPlan` field and its declaration: ``help`` (CLI flag and route docs),
    ``metavar`` (the CLI value's name; none for a boolean flag), ``check`` (None
    when a value is valid, else why not)."""
    return dataclasses.field(
        default=default, metadata={"help": help_text, "metavar": metavar, "check": check}
    )


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Persistent faults of one modem (see the module docstring); the default is none.

    Each field is declared once, here: its type and default, its help text and
    its check. The ``hostsim run --fault-*`` flags, the ``/_hostsim`` route
    docs and the parsing of HTTP form fields are made from these declarations
    (:func:`fault_fields`, :func:`parse_fault`).
    """

    chunk_size: int = _fault(
        0,
        "split every output write into chunks of at most N bytes",
        metavar="N",
        check=_at_least(0),
    )
    chunk_delay: float = _fault(
        0.0,
        "delay between output chunks",
        metavar="SECONDS",
        check=_between(0, 60, "between 0 and 60 seconds"),
    )
    urc_flood: int = _fault(
        0,
        "N vendor URCs before every response line",
        metavar="N",
        check=_between(0, 1000, "between 0 and 1000"),
    )
    bare_lf: bool = _fault(False, "line endings \\n instead of \\r\\n")
    echo_stuck: bool = _fault(False, "ATE0 answers OK but echo stays on")
    cms_on_send: float = _fault(
        0.0,
        "probability of +CMS ERROR: <cms_on_send_code> on AT+CMGS",
        metavar="P",
        check=_between(0.0, 1.0, "a probability between 0 and 1"),
    )
    cms_on_send_code: int = _fault(
        500,
        "the +CMS ERROR code of cms_on_send (27.005 §3.2.5: 0-127 RP-causes, e.g. 21 "
        "transfer rejected or 42 congestion; 128-255 TP-failure causes; 300-500)",
        metavar="CODE",
        check=_between(0, 511, "a +CMS ERROR code between 0 and 511"),
    )
    sent_anyway: float = _fault(
        0.0,
        "probability that such a failed send went out all the same",
        metavar="P",
        check=_between(0.0, 1.0, "a probability between 0 and 1"),
    )
    invalid_cmti: bool = _fault(False, "a bogus +CMTI after every real one")
    overlong_line: int = _fault(
        0,
        f"the next N message bodies printed (AT+CMGR, AT+CMGL) are one line of "
        f"{OVERLONG_BYTES} bytes instead, one per answer (counts down)",
        metavar="N",
        check=_between(0, 1000, "between 0 and 1000"),
    )
    unreadable_index: int = _fault(
        -1,
        "a corrupt record at index N: AT+CMGR=N and any AT+CMGL that lists it answer "
        "+CMS ERROR: 320 (memory failure) until AT+CMGD=N deletes it; -1: none",
        metavar="N",
        check=_between(-1, 999_999, "-1 (off) or an index"),
    )
    cscs_reads_ira: bool = _fault(
        False, 'AT+CSCS? answers "IRA" whatever was set (the set character set is used)'
    )

    def __post_init__(self) -> None:
        for field in fault_fields():
            problem = check_fault(field, getattr(self, field.name))
            if problem is not None:
                raise ValueError(problem)

    @property
    def active(self) -> bool:
        """Any fault set."""
        return self != FaultPlan()

    def replace(self, **changes: Any) -> FaultPlan:
        """A copy with ``changes``; ValueError for unknown names or bad values."""
        unknown = set(changes) - {f.name for f in fault_fields()}
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, object]:
        """The plan as JSON-ready data."""
        return dataclasses.asdict(self)

    def updated_from_strings(self, fields: Mapping[str, str]) -> FaultPlan:
        """A copy with settings parsed from text (HTTP form fields); ValueError on any
        unknown name or unparsable value. Booleans: true/false, 1/0, yes/no, on/off."""
        changes: dict[str, object] = {}
        for field in fault_fields():
            text = fields.get(field.name)
            if text is None:
                continue
            changes[field.name] = parse_fault(field, text)
        unknown = set(fields) - {f.name for f in fault_fields()}
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        return self.replace(**changes)


def fault_fields() -> tuple[dataclasses.Field[Any], ...]:
    """The declared faults, in declaration order."""
    return dataclasses.fields(FaultPlan)


def fault_kind(field: dataclasses.Field[Any]) -> type[bool] | type[int] | type[float]:
    """The Python type of a fault field (``bool``, ``int`` or ``float``)."""
    return {"bool": bool, "int": int, "float": float}[str(field.type)]


def check_fault(field: dataclasses.Field[Any], value: object) -> str | None:
    """Why ``value`` is not valid for ``field``, or None when it is."""
    check = field.metadata["check"]
    if check is None:
        return None
    result: str | None = check(field.name, value)
    return result


def parse_fault(field: dataclasses.Field[Any], text: str) -> object:
    """``text`` as a value of ``field`` (not yet checked); ValueError when unparsable."""
    value = text.strip().lower()
    kind = fault_kind(field)
    if kind is bool:
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{field.name} must be true or false, got {text!r}")
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{field.name} must be a number, got {text!r}") from None


def describe_faults() -> list[str]:
    """One line per fault, ``name`` (type) and help, for the docs of the routes."""
    return [
        f"``{f.name}`` ({fault_kind(f).__name__}): {f.metadata['help']}" for f in fault_fields()
    ]


def overlong_body(plan: FaultPlan, lines: list[str]) -> tuple[list[str], FaultPlan]:
    """``lines`` of an ``AT+CMGR``/``AT+CMGL`` answer under ``plan.overlong_line``: the
    first body line (the one after a ``+CMGR:``/``+CMGL:`` header) replaced by
    :data:`OVERLONG_BYTES` hex digits, and the plan with one fewer to go. Unchanged
    when the fault is off or there is no body line (an empty listing)."""
    if plan.overlong_line <= 0:
        return lines, plan
    for i, line in enumerate(lines[:-1]):
        if line.startswith(_BODY_HEADERS):
            LOGGER.info("fault: body line of %r printed %d bytes long", line, OVERLONG_BYTES)
            long_line = ("0123456789ABCDEF" * (OVERLONG_BYTES // 16 + 1))[:OVERLONG_BYTES]
            damaged = [*lines[: i + 1], long_line, *lines[i + 2 :]]
            return damaged, plan.replace(overlong_line=plan.overlong_line - 1)
    return lines, plan


def flood_lines(rng: random.Random, count: int) -> list[str]:
    """``count`` vendor URC lines chosen by ``rng``."""
    return [rng.choice(FLOOD_URCS).format(rssi=rng.randint(5, 31)) for _ in range(count)]


def invalid_cmti(
    rng: random.Random,
    storages: Mapping[str, MessageStorage],
    announced: Mapping[str, set[int]],
    mem: str,
) -> str:
    """A bogus ``+CMTI`` line to follow a real one in ``mem`` (the ``invalid_cmti`` fault).

    One of :data:`INVALID_CMTI_KINDS`: index ``-1``; an index in another
    memory (``ME``/``SM`` when the modem has no other); an index announced
    before and deleted since, else a free one (``-1`` when ``mem`` is full).
    """
    storage = storages[mem]
    kind = rng.choice(INVALID_CMTI_KINDS)
    if kind == "other-memory":
        others = sorted(name for name in storages if name != mem)
        other = rng.choice(others) if others else "ME" if mem != "ME" else "SM"
        return f'+CMTI: "{other}",{storage.first_index}'
    if kind == "deleted":
        used = set(storage.indices())
        deleted = sorted(set(announced.get(mem, set())) - used)
        free = [i for i in range(storage.first_index, storage.last_index + 1) if i not in used]
        choices = deleted or free
        if choices:
            return f'+CMTI: "{mem}",{rng.choice(choices)}'
    return f'+CMTI: "{mem}",-1'


@dataclass(frozen=True, slots=True)
class SendFault:
    """How one ``AT+CMGS`` fails: ``+CMS ERROR: <code>``, and whether the SMS went out anyway."""

    code: int
    sent_anyway: bool


class SendFaults:
    """The ``AT+CMGS`` failures of one modem: queued one-shots first, then ``cms_on_send``."""

    def __init__(self) -> None:
        self._queued: deque[SendFault] = deque()

    def queue(self, fault: SendFault) -> None:
        """Fail one more send this way (after those already queued)."""
        self._queued.append(fault)

    def next(self, plan: FaultPlan, rng: random.Random) -> SendFault | None:
        """The fault of this send, or None: a queued one, else one drawn from ``rng`` with
        ``plan.cms_on_send`` (CMS ``plan.cms_on_send_code``, sent anyway with
        ``plan.sent_anyway``)."""
        if self._queued:
            return self._queued.popleft()
        probability = plan.cms_on_send
        if probability > 0 and rng.random() < probability:
            fault = SendFault(plan.cms_on_send_code, rng.random() < plan.sent_anyway)
            LOGGER.info("fault: AT+CMGS answered CMS %d (sent anyway: %s)", fault.code,
                        fault.sent_anyway)  # fmt: skip
            return fault
        return None


def garbage(rng: random.Random, count: int) -> bytes:
    """``count`` random bytes (line noise) from ``rng``."""
    return bytes(rng.getrandbits(8) for _ in range(count))


class ChunkedWriter:
    """Writes the modem's output through ``write``, cut per the current plan.

    Without chunking, output goes straight through (behind any chunks still
    queued, so order holds). With ``chunk_size`` each write becomes chunks of
    at most that many bytes; the first is written at once, each next one
    ``chunk_delay`` seconds later via ``loop.call_later`` (``call_soon`` for 0).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        write: Callable[[bytes], None],
        plan: Callable[[], FaultPlan],
    ) -> None:
        self._loop = loop
        self._write = write
        self._plan = plan
        self._queue: deque[bytes] = deque()
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None

    @property
    def pending(self) -> int:
        """Bytes queued and not yet written."""
        return sum(len(chunk) for chunk in self._queue)

    def write(self, data: bytes) -> None:
        """Queue ``data``; never blocks."""
        if not data:
            return
        size = self._plan().chunk_size
        if size <= 0:
            if not self._queue:
                self._write(data)
                return
            self._queue.append(data)
            return
        for start in range(0, len(data), size):
            self._queue.append(data[start : start + size])
        if self._timer is None:
            self._next()

    def _next(self) -> None:
        self._timer = None
        if not self._queue:
            return
        self._write(self._queue.popleft())
        if self._queue:
            delay = self._plan().chunk_delay
            if delay > 0:
                self._timer = self._loop.call_later(delay, self._next)
            else:
                self._timer = self._loop.call_soon(self._next)

    def clear(self) -> None:
        """Drop whatever is queued (unplug, close)."""
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
