"""SMS command payloads: the grammar, the handler registry, the dispatcher, built-ins.

Grammar: ``<name>[: <argument>]``, split at the *first* ``:``.

* The name is lower-cased, trimmed, and internal whitespace runs collapse to one space:
  ``"  Report   Location : x"`` → ``"report location"``.
* The argument is trimmed; it is None when there is no ``:`` or only whitespace after it.
  Further colons belong to the argument (``"set: a:b"`` → ``("set", "a:b")``).
* An empty or whitespace-only payload gives the name ``""``; the dispatcher answers it
  with an error reply. Parsing never raises.

Handlers are coroutines taking a :class:`CommandContext` and returning the reply text, or
None for no reply. The payload is data: no handler here hands it to a shell.
:func:`format_reply` makes any reply fit one GSM 7-bit SMS.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from device.errors import SmscmdError
from device.sms import gsm7

LOGGER = logging.getLogger(__name__)

#: Shown in place of a character outside GSM 03.38.
REPLACEMENT = "?"
#: Ends a reply that was cut to fit one SMS.
CUT_MARKER = "..."


class RegistryError(SmscmdError):
    """Misuse of the registry: a duplicate, unknown or malformed command name."""


class HandlerFailure(SmscmdError):
    """Raised by a handler that failed in a way it can name (an exec handler's program
    exited non-zero, timed out or could not start): the command is journaled ``failed``
    with ``detail`` as its error, and ``reply`` is still sent."""

    def __init__(self, reply: str, detail: str) -> None:
        super().__init__(detail)
        self.reply = reply
        self.detail = detail


# --------------------------------------------------------------------------- grammar


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A parsed payload: normalised ``name`` (maybe ``""``) and trimmed ``argument``."""

    name: str
    argument: str | None


def normalize_name(name: str) -> str:
    """Lower-case ``name``, trim it and collapse internal whitespace to single spaces."""
    return " ".join(name.lower().split())


def parse_payload(text: str) -> ParsedCommand:
    """Parse ``<name>[: <argument>]``; never raises for any ``str``.

    ``"checkin: firmware update"`` → ``("checkin", "firmware update")``;
    ``"PING"`` → ``("ping", None)``; ``"ping:"`` → ``("ping", None)``; ``""`` → ``("", None)``.
    """
    head, colon, rest = text.partition(":")
    argument = rest.strip() if colon else ""
    return ParsedCommand(normalize_name(head), argument or None)


# --------------------------------------------------------------------------- handlers


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """What the ``status`` command reports, as human strings (``"-67 dBm"``)."""

    module: str
    registration: str
    signal: str


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Everything a handler may know about the command it runs.

    ``timestamp`` is the SMSC time stamp (None when unknown); ``journal_id`` the inbox
    row; ``status`` returns the modem's current state on demand.
    """

    name: str
    argument: str | None
    sender: str
    timestamp: datetime | None
    journal_id: int
    status: Callable[[], StatusSnapshot]


HandlerFunc = Callable[[CommandContext], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Handler:
    """A named command.

    ``idempotent`` says whether running it twice is harmless: a command found
    ``running`` after a crash is re-run only if it is. A disabled handler is registered
    but answered with an error and left out of ``help``.
    """

    name: str
    func: HandlerFunc
    idempotent: bool
    summary: str
    enabled: bool = True
    #: At most ``count`` runs per ``seconds`` (None: unlimited); more are answered
    #: ``error: <name> rate limited`` and not run.
    rate_limit: tuple[int, float] | None = None
    #: Runs of this handler at once (>= 1); more wait, oldest first, without holding
    #: other handlers' commands (see :mod:`device.executor`).
    concurrency: int = 1

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"handler {self.name!r}: concurrency must be >= 1")


#: The name of the catch-all handler (``[handlers."*"]``, like gammu-smsd's
#: RunOnReceive): it runs any command that has no handler of its own.
CATCH_ALL = "*"


#: Adds handlers to a registry when it first needs them (:meth:`Registry.defer`).
Loader = Callable[["Registry"], object]


@dataclass(slots=True)
class _Entries:
    """What a registry holds; shared by the registries that :meth:`Registry.replace` joined."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    pending: Loader | None = None


class Registry:
    """Handlers by name, and at most one catch-all (:data:`CATCH_ALL`).

    A :meth:`defer`-red loader (the plug-in scan) runs once, at the first question
    that its handlers could change the answer to: a name that is not registered
    (:meth:`lookup`, :meth:`get`, ``in``), or every name (:meth:`names`, ``len``).
    Registering, and asking for a registered name, never run it.
    """

    def __init__(self) -> None:
        """Start empty; see :func:`default_registry` for the built-ins."""
        self._entries = _Entries()

    @property
    def _handlers(self) -> dict[str, Handler]:
        return self._entries.handlers

    def defer(self, loader: Loader) -> None:
        """Run ``loader(self)`` when the registry first needs every name (see the
        class docstring); a loader already pending runs first."""
        self.settle()
        self._entries.pending = loader

    def settle(self) -> None:
        """Run the pending loader now, if there is one (it runs only once)."""
        loader, self._entries.pending = self._entries.pending, None
        if loader is not None:
            loader(self)

    def replace(self, other: Registry) -> None:
        """Become ``other``: its handlers and its pending loader, shared from now on (a
        reload: code holding this registry sees the new handlers, and a loader run
        through either registry, ``help``'s included, runs once for both)."""
        self._entries = other._entries

    def register(self, handler: Handler) -> None:
        """Add ``handler``.

        RegistryError when the name is taken, empty, contains ``:`` or is not in normal
        form (lower case, single spaces, trimmed): such a name could never be dispatched.
        """
        name = handler.name
        if name != CATCH_ALL and (not name or ":" in name or normalize_name(name) != name):
            raise RegistryError(
                f"command name {name!r} must be non-empty, lower-case, trimmed, "
                "single-spaced and without ':'"
            )
        if name in self._handlers:
            raise RegistryError(f"command {name!r} is already registered")
        self._handlers[name] = handler

    def unregister(self, name: str) -> Handler:
        """Remove and return the handler ``name``; RegistryError when there is none."""
        try:
            return self._handlers.pop(name)
        except KeyError:
            raise RegistryError(f"command {name!r} is not registered") from None

    def get(self, name: str) -> Handler | None:
        """The handler registered as ``name`` (enabled or not), or None."""
        if name not in self._handlers:
            self.settle()
        return self._handlers.get(name)

    def lookup(self, name: str) -> Handler | None:
        """The handler that runs the command ``name``: its own (enabled or not), else the
        enabled catch-all, else None. The empty name has none."""
        if not name:
            return None
        own = self.get(name)
        if own is not None:
            return own
        fallback = self._handlers.get(CATCH_ALL)
        return fallback if fallback is not None and fallback.enabled else None

    def names(self, *, enabled_only: bool = False) -> list[str]:
        """Registered names, sorted; with ``enabled_only`` the disabled ones and the
        catch-all are left out (``help`` lists commands, and ``*`` is none)."""
        self.settle()
        return sorted(
            n
            for n, h in self._handlers.items()
            if not enabled_only or (h.enabled and n != CATCH_ALL)
        )

    def __contains__(self, name: object) -> bool:
        if name not in self._handlers:
            self.settle()
        return name in self._handlers

    def __len__(self) -> int:
        self.settle()
        return len(self._handlers)


# --------------------------------------------------------------------------- built-ins


async def _ping(ctx: CommandContext) -> str:
    return "pong" if ctx.argument is None else f"pong: {ctx.argument}"


async def _status(ctx: CommandContext) -> str:
    snap = ctx.status()
    return f"status: module {snap.module}, registration {snap.registration}, signal {snap.signal}"


def default_registry() -> Registry:
    """A registry with the built-ins ``help``, ``ping`` and ``status``.

    ``help`` lists the enabled commands of *this* registry at the time it runs, so
    commands registered later are included.
    """
    registry = Registry()

    async def _help(ctx: CommandContext) -> str:
        return "commands: " + ", ".join(registry.names(enabled_only=True))

    registry.register(Handler("help", _help, idempotent=True, summary="list the commands"))
    registry.register(
        Handler("ping", _ping, idempotent=True, summary="answer pong (with the argument)")
    )
    registry.register(
        Handler("status", _status, idempotent=True, summary="module, registration, signal")
    )
    return registry


#: Entry-point group through which installed packages add handlers.
ENTRY_POINT_GROUP = "smscmd.handlers"


def load_plugins(registry: Registry, group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Register the handlers that installed packages declare in the ``smscmd.handlers``
    entry-point group; returns the names added.

    An entry point names a :class:`Handler`, an iterable of them, or a callable
    returning either. One that fails to load, returns something else, or clashes
    with a registered name is logged and skipped: a broken plug-in never stops
    the agent. The agent defers this scan (:func:`device.preflight.build_registry`).
    """
    import importlib.metadata  # only here: its import and the scan cost ~10 ms, ~1 MiB

    added: list[str] = []
    for entry in importlib.metadata.entry_points(group=group):
        try:
            loaded: object = entry.load()
            if callable(loaded) and not isinstance(loaded, Handler):
                loaded = loaded()
        except Exception:
            LOGGER.exception("handler plug-in %r (%s) failed to load", entry.name, entry.value)
            continue
        candidates = [loaded] if isinstance(loaded, Handler) else loaded
        if not isinstance(candidates, Iterable):
            LOGGER.error("handler plug-in %r gave %r, not a Handler", entry.name, loaded)
            continue
        for handler in candidates:
            if not isinstance(handler, Handler):
                LOGGER.error("handler plug-in %r gave %r, not a Handler", entry.name, handler)
                continue
            try:
                registry.register(handler)
            except RegistryError as exc:
                LOGGER.error("handler plug-in %r: %s", entry.name, exc)
                continue
            LOGGER.info("handler %r from plug-in %r", handler.name, entry.name)
            added.append(handler.name)
    return added


# --------------------------------------------------------------------------- dispatch


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one dispatch: the reply (None → send nothing), success, error detail."""

    reply: str | None
    ok: bool
    error: str | None = None


class Dispatcher:
    """Runs the handler for a context; bad input and failing handlers become error replies."""

    def __init__(self, registry: Registry, *, timeout: float | None = None) -> None:
        """``timeout`` bounds each handler run in seconds (None: unbounded)."""
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.registry = registry
        self.timeout = timeout
        self._runs: dict[str, collections.deque[float]] = {}

    async def dispatch(self, ctx: CommandContext) -> Outcome:
        """Run ``ctx.name``'s handler; never raises except on cancellation.

        Empty name → ``error: empty command``; a name with no handler runs the catch-all
        (when one is registered and enabled), else ``error: unknown command '<name>'``;
        disabled → ``error: command '<name>' is disabled``; a :class:`HandlerFailure` →
        its reply, failed with its detail; any other raising handler →
        ``error: <name> failed`` (logged with traceback); over the timeout →
        ``error: <name> timed out``. Replies are not yet cut to SMS size: see
        :func:`format_reply`.
        """
        name = ctx.name
        if not name:
            return Outcome("error: empty command", ok=False, error="empty command")
        handler = self.registry.lookup(name)
        if handler is None:
            LOGGER.warning("unknown command %r from %s", name, ctx.sender)
            return Outcome(f"error: unknown command '{name}'", ok=False, error="unknown command")
        if not handler.enabled:
            LOGGER.warning("disabled command %r from %s", name, ctx.sender)
            return Outcome(
                f"error: command '{name}' is disabled", ok=False, error="disabled command"
            )
        if handler.rate_limit is not None:
            count, seconds = handler.rate_limit
            now = time.monotonic()
            runs = self._runs.setdefault(name, collections.deque())
            while runs and now - runs[0] >= seconds:
                runs.popleft()
            if len(runs) >= count:
                LOGGER.warning("command %r rate limited (%d per %g s)", name, count, seconds)
                return Outcome(f"error: {name} rate limited", ok=False, error="rate limited")
            runs.append(now)
        try:
            async with asyncio.timeout(self.timeout):
                reply = await handler.func(ctx)
        except HandlerFailure as exc:
            LOGGER.error("command %r (inbox %d) failed: %s", name, ctx.journal_id, exc.detail)
            return Outcome(exc.reply, ok=False, error=exc.detail)
        except TimeoutError:
            LOGGER.error("command %r timed out after %s s", name, self.timeout)
            return Outcome(
                f"error: {name} timed out", ok=False, error=f"timed out after {self.timeout} s"
            )
        except Exception as exc:
            LOGGER.exception("command %r (inbox %d) failed", name, ctx.journal_id)
            return Outcome(f"error: {name} failed", ok=False, error=repr(exc))
        if reply is not None and not isinstance(reply, str):
            LOGGER.error("command %r returned %r, not a str", name, type(reply).__name__)
            return Outcome(
                f"error: {name} failed", ok=False, error=f"handler returned {type(reply)!r}"
            )
        return Outcome(reply, ok=True)


def format_reply(text: str) -> tuple[str, list[str]]:
    """Make ``text`` fit one SMS: returns the final text and warnings for the log.

    Characters outside GSM 03.38 become ``?`` (counted in a warning); then the text is
    cut to 160 septets ending in ``...`` (extension characters such as ``€`` or ``{``
    count two septets and are never split). Exactly 160 septets is not cut.
    """
    warnings: list[str] = []
    clean, replaced = gsm7.sanitize(text, REPLACEMENT)
    if replaced:
        warnings.append(f"replaced {replaced} character(s) outside GSM 03.38 with {REPLACEMENT!r}")
    septets = gsm7.septet_length(clean)
    final, cut = gsm7.fit(clean, gsm7.SMS_SEPTETS, CUT_MARKER)
    if cut:
        warnings.append(
            f"cut from {septets} to {gsm7.septet_length(final)} septets (limit {gsm7.SMS_SEPTETS})"
        )
    return final, warnings
