"""Handlers from the configuration: external programs, and settings for any handler.

A ``[handlers."<name>"]`` table with ``argv`` runs a program for the command
``<name>``; one with ``mqtt = true`` forwards it to an MQTT client
(:mod:`device.mqtt.handlers`); without either it adjusts a handler that exists already (a
built-in or a plug-in): ``enabled``, ``idempotent``, ``rate``/``per``,
``concurrency`` (runs at once, default 1: see :mod:`device.executor`).
``[handlers."*"]`` is the catch-all: it runs every command that has no handler
of its own (a disabled one stays disabled), and gets the command's name as one
more argv element before the argument (``$1`` is the name, ``$2`` the argument
in ``argv`` mode).

The program:

* is started with ``argv`` as given — **never through a shell**; the command's
  argument is one more argv element (``argument = "argv"``, the default) or
  its standard input (``argument = "stdin"``); the payload is data, never code;
* runs in ``cwd`` with an environment of only ``PATH``, the table's ``env`` and
  the command's metadata: ``SMSCMD_COMMAND``, ``SMSCMD_ARGUMENT``,
  ``SMSCMD_SENDER``, ``SMSCMD_TIMESTAMP`` (ISO 8601, empty when unknown),
  ``SMSCMD_JOURNAL_ID``;
* is killed (its whole process group) after ``timeout`` seconds;
* answers with its standard output, of which at most ``output_limit`` bytes are
  read (the reply is then cut to one SMS as every reply is); an empty (or
  whitespace-only) stdout sends no reply at all.

Outcomes: exit status 0 is ``done``. A non-zero status (``error: <name> exited
with status N``; a signal is status -N), the timeout (``error: <name> timed
out``) and a program that cannot start (``error: <name> cannot start``) are
``failed``: that reply is sent and the journal's error says why (the status or
signal with the tail of stderr, the timeout, the OS error). On a timeout or a
cancellation the group is killed and our ends of its pipes are closed, so a
grandchild that escaped the group and still holds stdout neither hangs the agent
nor leaks descriptors.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from device.commands import CATCH_ALL, CommandContext, Handler, HandlerFailure, Registry
from device.errors import ConfigError

LOGGER = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class HandlerConfig:
    """One ``[handlers."<name>"]`` table, validated (see :mod:`device.config`)."""

    name: str
    argv: tuple[str, ...] | None = None
    argument: str = "argv"
    cwd: Path | None = None
    env: tuple[tuple[str, str], ...] = ()
    timeout: float = 10.0
    output_limit: int = 4096
    idempotent: bool | None = None
    enabled: bool | None = None
    rate: int | None = None
    per: float = 60.0
    summary: str | None = None
    concurrency: int | None = None
    #: ``mqtt = true``: the command is answered over MQTT (:mod:`device.mqtt.handlers`),
    #: not by a program; needs the ``[mqtt]`` table.
    mqtt: bool = False


def exec_handler(cfg: HandlerConfig) -> Handler:
    """A :class:`Handler` that runs ``cfg.argv`` (see the module docstring)."""
    if not cfg.argv:
        raise ConfigError("needs argv", key=f'handlers."{cfg.name}".argv')
    argv = cfg.argv

    async def run(ctx: CommandContext) -> str | None:
        args = list(argv)
        if cfg.name == CATCH_ALL:
            args.append(ctx.name)
        if cfg.argument == "argv" and ctx.argument is not None:
            args.append(ctx.argument)
        stdin_data = (ctx.argument or "").encode() if cfg.argument == "stdin" else None
        env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), **dict(cfg.env)}
        env.update(
            SMSCMD_COMMAND=ctx.name,
            SMSCMD_ARGUMENT=ctx.argument or "",
            SMSCMD_SENDER=ctx.sender,
            SMSCMD_TIMESTAMP=ctx.timestamp.isoformat() if ctx.timestamp else "",
            SMSCMD_JOURNAL_ID=str(ctx.journal_id),
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE
                if stdin_data is not None
                else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=cfg.cwd,
                env=env,
                start_new_session=True,  # its own process group: a timeout kills all of it
            )
        except OSError as exc:
            raise HandlerFailure(
                f"error: {cfg.name} cannot start", f"cannot start {argv[0]}: {exc}"
            ) from exc
        try:
            out, err = await asyncio.wait_for(
                _communicate(proc, stdin_data, cfg.output_limit), cfg.timeout
            )
        except TimeoutError:
            await _reap(proc)
            raise HandlerFailure(
                f"error: {cfg.name} timed out", f"killed after {cfg.timeout:g} s (timeout)"
            ) from None
        except asyncio.CancelledError:
            await _reap(proc)
            raise
        tail = err[-500:].decode(errors="replace").strip()
        if tail:
            LOGGER.info("handler %r stderr: %s", cfg.name, tail)
        if proc.returncode != 0:
            status = proc.returncode
            how = (
                f"killed by signal {signal.Signals(-status).name}"
                if status is not None and status < 0 and -status in _SIGNALS
                else f"exited with status {status}"
            )
            raise HandlerFailure(
                f"error: {cfg.name} exited with status {status}",
                f"{how}: {tail}" if tail else how,
            )
        text = out.decode("utf-8", errors="replace").strip()
        return text or None

    return Handler(
        cfg.name,
        run,
        idempotent=bool(cfg.idempotent),
        summary=cfg.summary or f"runs {argv[0]}",
        enabled=cfg.enabled if cfg.enabled is not None else True,
        rate_limit=(cfg.rate, cfg.per) if cfg.rate is not None else None,
        concurrency=cfg.concurrency or 1,
    )


async def _communicate(
    proc: asyncio.subprocess.Process, stdin_data: bytes | None, limit: int
) -> tuple[bytes, bytes]:
    """Feed stdin, read at most ``limit`` bytes of each output (draining the rest), wait."""
    if stdin_data is not None and proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(stdin_data)
            await proc.stdin.drain()
        proc.stdin.close()

    async def bounded(stream: asyncio.StreamReader | None) -> bytes:
        if stream is None:
            return b""
        kept = bytearray()
        while chunk := await stream.read(65536):
            if len(kept) < limit:
                kept += chunk[: limit - len(kept)]
        return bytes(kept)

    out, err = await asyncio.gather(bounded(proc.stdout), bounded(proc.stderr))
    await proc.wait()
    return out, err


_SIGNALS = frozenset(int(s) for s in signal.Signals)
#: Seconds to wait for a killed program to be reaped (SIGKILL cannot be caught).
_REAP_TIMEOUT = 5.0


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Kill the program's process group, close our ends of its pipes and reap it.

    Closing the pipes matters: a grandchild that left the group (``setsid``) may
    still hold stdout, and asyncio's ``wait()`` would otherwise wait for its EOF
    (and leak the descriptors). Never raises, never waits more than a few seconds.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    transport = getattr(proc, "_transport", None)  # asyncio has no public close of the pipes
    if transport is not None:
        transport.close()
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), _REAP_TIMEOUT)
    except TimeoutError:
        LOGGER.error("handler process %d not reaped after %g s", proc.pid, _REAP_TIMEOUT)


def apply_config(
    registry: Registry,
    configs: tuple[HandlerConfig, ...],
    remote: Callable[[HandlerConfig], Handler] | None = None,
) -> None:
    """Register exec handlers (and, through ``remote``, the ``mqtt = true`` ones) and
    apply settings to existing ones; ConfigError names the handler when a table cannot
    apply (no such handler, a clash, an mqtt table without ``remote``)."""
    if remote is None and any(cfg.mqtt for cfg in configs):
        name = next(cfg.name for cfg in configs if cfg.mqtt)
        raise ConfigError("mqtt = true needs the [mqtt] table", key=f'handlers."{name}".mqtt')
    for cfg in configs:
        key = f'handlers."{cfg.name}"'
        if cfg.argv or cfg.mqtt:
            if cfg.name in registry:
                raise ConfigError(
                    "a handler of that name exists already (built-in or plug-in); "
                    "disable it with enabled = false under another table or choose another name",
                    key=key,
                )
            registry.register(remote(cfg) if cfg.mqtt and remote else exec_handler(cfg))
            continue
        existing = registry.get(cfg.name)
        if existing is None:
            raise ConfigError("no such handler, and no argv to run", key=key)
        changed = dataclasses.replace(
            existing,
            enabled=existing.enabled if cfg.enabled is None else cfg.enabled,
            idempotent=existing.idempotent if cfg.idempotent is None else cfg.idempotent,
            rate_limit=(cfg.rate, cfg.per) if cfg.rate is not None else existing.rate_limit,
            concurrency=existing.concurrency if cfg.concurrency is None else cfg.concurrency,
        )
        registry.unregister(cfg.name)
        registry.register(changed)
