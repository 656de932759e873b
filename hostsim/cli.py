"""``hostsim`` command line: a simulated Super SIM fleet.

``hostsim run [--api HOST:PORT] [--sims N] [--link PATH] [--seed N] …`` starts N
emulated gateway modems (each on its own pty, each holding one Sim ``simK``),
the emulated network and the SmsCommands API, and prints as its first stdout
line one JSON object::

    {"event": "ready", "api": "http://127.0.0.1:8088", "console": null, "account_sid": "AC…",
     "auth_token": "…", "sims": [{"sid": "HS…", "unique_name": "sim0",
     "pty": "/dev/pts/N", "link": "PATH-or-null"}]}

``--baud N`` paces both directions of every modem's line at N/10 bytes per second
and ``--byte-log PATH`` appends every chunk that crosses a line to PATH as a JSON
line (see :mod:`hostsim.wire`); without ``--baud`` the line is as fast as the pty.
Paced, hostsim runs on a ``select(2)`` loop (microsecond timers, so each transfer
ends when its last byte is due, not up to 1 ms later), unless ``--sims`` is above
:data:`hostsim.wire.MAX_SIMS_ON_SELECT` (then epoll, with a warning).

Logs go to stderr. It runs until SIGINT or SIGTERM, then fails the commands it
could not deliver, removes its symlinks and exits 0. Exit 2 for usage errors,
1 when a pty, a link or the API address cannot be set up.

Faults (on every modem; random choices seeded by ``--seed``): one
``--fault-<name>`` flag per field of :class:`hostsim.modem.faults.FaultPlan`
(``_`` becomes ``-``), made from its declaration: a boolean is a plain flag,
any other takes a value checked as the plan checks it (a bad one is a usage
error). One-shot faults (reset, unplug, garbage, hang) are HTTP routes under
``/_hostsim`` (see :mod:`hostsim.cloud.api.control`).

``--console`` serves a live page of the fleet at ``/`` of the API (``console`` in the
ready line is its URL; log in with the account SID and auth token): see
:mod:`hostsim.console`.

``hostsim personas`` prints the per-persona command table (Markdown, as the
README's hostsim section embeds it; see :func:`hostsim.modem.personas.markdown`);
``--readme PATH`` rewrites the table between the markers of that file instead.

Credentials: ``--account-sid`` / ``--auth-token``, else the environment
variables ``HOSTSIM_ACCOUNT_SID`` / ``HOSTSIM_AUTH_TOKEN``, else generated
(stable with ``--seed``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import Any

from hostsim.cloud.network import DEFAULT_RETRY_WINDOW
from hostsim.modem.faults import FaultPlan, check_fault, fault_fields, fault_kind, parse_fault
from hostsim.modem.personas import PERSONAS, markdown, persona, with_table
from hostsim.sim import HostSim
from hostsim.wire import ByteLog, paced_loop_factory

LOGGER = logging.getLogger(__name__)

DEFAULT_API = "127.0.0.1:8088"
_ACCOUNT_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")
_ADDRESS_RE = re.compile(r"^(?P<host>\[[^\]]+\]|[^:]+):(?P<port>\d{1,5})$")


def _address(text: str) -> str:
    match = _ADDRESS_RE.match(text)
    if match is None or int(match.group("port")) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return text


def _webhook(text: str) -> str:
    from hostsim.cloud.api.resource import valid_callback_url

    if not valid_callback_url(text):
        raise argparse.ArgumentTypeError(f"expected an absolute http(s) URL, got {text!r}")
    return text


def _account_sid(text: str) -> str:
    if not _ACCOUNT_RE.match(text):
        raise argparse.ArgumentTypeError("an account SID is AC followed by 32 hex digits")
    return text


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError("must be greater than 0")
        return value

    return parse


def _fault_flag(field: dataclasses.Field[Any]) -> str:
    return "--fault-" + field.name.replace("_", "-")


def _fault_value(field: dataclasses.Field[Any]) -> Callable[[str], object]:
    """The argparse ``type`` of a valued fault flag: parsed and checked as the plan would."""

    def parse(text: str) -> object:
        try:
            value = parse_fault(field, text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        problem = check_fault(field, value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


def _add_fault_flags(run: argparse.ArgumentParser) -> None:
    """One ``--fault-<name>`` flag per :class:`FaultPlan` field, from its declaration."""
    group = run.add_argument_group("faults", "persistent faults of every modem (seeded)")
    for field in fault_fields():
        if fault_kind(field) is bool:
            group.add_argument(_fault_flag(field), action="store_true", help=field.metadata["help"])
        else:
            group.add_argument(
                _fault_flag(field),
                type=_fault_value(field),
                default=field.default,
                metavar=field.metadata["metavar"],
                help=field.metadata["help"],
            )


def fault_plan(args: argparse.Namespace) -> FaultPlan:
    """The :class:`FaultPlan` the ``--fault-*`` flags ask for (ValueError when invalid)."""
    return FaultPlan(**{f.name: getattr(args, "fault_" + f.name) for f in fault_fields()})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostsim",
        description="A simulated Super SIM fleet: emulated modems on ptys and the SmsCommands API",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the fleet until SIGINT/SIGTERM")
    run.add_argument(
        "--api",
        type=_address,
        default=DEFAULT_API,
        metavar="HOST:PORT",
        help=f"where the SmsCommands API listens (default {DEFAULT_API}; port 0: any)",
    )
    run.add_argument(
        "--sims",
        type=_positive(int),
        default=1,
        metavar="N",
        help="number of gateways, each with its own Sim and pty (default 1)",
    )
    run.add_argument(
        "--link",
        metavar="PATH",
        help="stable symlink to the pty (PATH0, PATH1 … with several Sims)",
    )
    run.add_argument(
        "--seed", type=int, metavar="N", help="reproducible sids, auth token and fault choices"
    )
    run.add_argument(
        "--persona",
        choices=sorted(PERSONAS),
        default="quectel-bg96",
        help="the module family the modems emulate (default quectel-bg96)",
    )
    run.add_argument(
        "--account-sid",
        type=_account_sid,
        metavar="AC…",
        default=os.environ.get("HOSTSIM_ACCOUNT_SID") or None,
        help="account SID for Basic auth (env HOSTSIM_ACCOUNT_SID)",
    )
    run.add_argument(
        "--auth-token",
        metavar="TOKEN",
        default=os.environ.get("HOSTSIM_AUTH_TOKEN") or None,
        help="auth token for Basic auth and signatures (env HOSTSIM_AUTH_TOKEN)",
    )
    run.add_argument(
        "--commands-webhook",
        metavar="URL",
        help="fleet webhook: every from_sim command is sent here",
    )
    run.add_argument(
        "--commands-webhook-method",
        choices=["GET", "POST"],
        default="POST",
        type=str.upper,
        help="method for the fleet webhook (default POST)",
    )
    run.add_argument(
        "--retry-window",
        type=_positive(float),
        default=DEFAULT_RETRY_WINDOW,
        metavar="SECONDS",
        help="how long undelivered to_sim commands are retried (default 86400)",
    )
    run.add_argument(
        "--baud",
        type=_positive(int),
        metavar="N",
        help="pace every byte at the serial line rate, 10 bits a byte (default: unpaced)",
    )
    run.add_argument(
        "--byte-log",
        metavar="PATH",
        help="append every chunk crossing a line to PATH (JSON lines: t, dir, port, hex)",
    )
    run.add_argument(
        "--console",
        action="store_true",
        help="serve the live console (a web page of the fleet) at / of the API",
    )
    run.add_argument("--log-level", default="INFO", type=str.upper,
                     choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                     help="stderr log level (DEBUG shows raw AT traffic)")  # fmt: skip
    _add_fault_flags(run)
    personas = sub.add_parser("personas", help="print the command set of every persona (Markdown)")
    personas.add_argument(
        "--readme", metavar="PATH", help="rewrite the table between the markers of PATH instead"
    )
    return parser


async def _run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    byte_log = ByteLog(args.byte_log) if args.byte_log is not None else None
    try:
        async with HostSim(
            args.sims,
            config=persona(args.persona),
            link=args.link,
            seed=args.seed,
            account_sid=args.account_sid,
            auth_token=args.auth_token,
            api=args.api,
            retry_window=args.retry_window,
            commands_webhook=args.commands_webhook,
            commands_webhook_method=args.commands_webhook_method,
            faults=fault_plan(args),
            baud=args.baud,
            byte_log=byte_log,
            console=args.console,
        ) as sim:
            sys.stdout.write(json.dumps(sim.ready_info()) + "\n")
            sys.stdout.flush()
            await stop.wait()
            LOGGER.info("signal received, shutting down")
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        if byte_log is not None:
            byte_log.close()
    return 0


def _personas(readme: str | None) -> int:
    """``hostsim personas [--readme PATH]``: print the table, or rewrite it in ``readme``."""
    if readme is None:
        sys.stdout.write(markdown())
        return 0
    try:
        with open(readme, encoding="utf-8") as file:
            text = file.read()
        updated = with_table(text)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"hostsim personas: {readme}: {exc}\n")
        return 1
    with open(readme, "w", encoding="utf-8") as file:
        file.write(updated)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "personas":
        return _personas(args.readme)
    try:
        fault_plan(args)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        with asyncio.Runner(loop_factory=paced_loop_factory(args.baud, args.sims)) as runner:
            return runner.run(_run(args))
    except OSError as exc:
        LOGGER.error("cannot start: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
