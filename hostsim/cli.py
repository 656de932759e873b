"""``hostsim`` command line: a simulated Super SIM fleet.

``hostsim run [--api HOST:PORT] [--sims N] [--link PATH] [--seed N] …`` starts N
emulated gateway modems (each on its own pty, each holding one Sim ``simK``),
the emulated network and the SmsCommands API, and prints as its first stdout
line one JSON object::

    {"event": "ready", "api": "http://127.0.0.1:8088", "account_sid": "AC…",
     "auth_token": "…", "sims": [{"sid": "HS…", "unique_name": "sim0",
     "pty": "/dev/pts/N", "link": "PATH-or-null"}]}

Logs go to stderr. It runs until SIGINT or SIGTERM, then fails the commands it
could not deliver, removes its symlinks and exits 0. Exit 2 for usage errors,
1 when a pty, a link or the API address cannot be set up.

Faults (:mod:`hostsim.faults`, on every modem; random choices seeded by
``--seed``): ``--fault-chunk-size N``, ``--fault-chunk-delay SECONDS``,
``--fault-urc-flood N``, ``--fault-bare-lf``, ``--fault-echo-stuck``,
``--fault-cms-on-send P``, ``--fault-sent-anyway P``,
``--fault-invalid-cmti``. One-shot faults (reset, unplug, garbage, hang) are
HTTP routes under ``/_hostsim`` (see :mod:`hostsim.api`).

Credentials: ``--account-sid`` / ``--auth-token``, else the environment
variables ``HOSTSIM_ACCOUNT_SID`` / ``HOSTSIM_AUTH_TOKEN``, else generated
(stable with ``--seed``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Callable

from hostsim.faults import FaultPlan
from hostsim.network import DEFAULT_RETRY_WINDOW
from hostsim.profiles import PERSONAS, persona
from hostsim.sim import HostSim

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
    from hostsim.api import valid_callback_url

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


def _non_negative(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value >= 0:
            raise argparse.ArgumentTypeError("must not be negative")
        return value

    return parse


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a probability is between 0 and 1")
    return value


def _add_fault_flags(run: argparse.ArgumentParser) -> None:
    group = run.add_argument_group("faults", "persistent faults of every modem (seeded)")
    group.add_argument(
        "--fault-chunk-size",
        type=_non_negative(int),
        default=0,
        metavar="N",
        help="split every output write into chunks of at most N bytes",
    )
    group.add_argument(
        "--fault-chunk-delay",
        type=_non_negative(float),
        default=0.0,
        metavar="SECONDS",
        help="delay between output chunks",
    )
    group.add_argument(
        "--fault-urc-flood",
        type=_non_negative(int),
        default=0,
        metavar="N",
        help="N vendor URCs before every response line",
    )
    group.add_argument(
        "--fault-bare-lf", action="store_true", help="line endings \\n instead of \\r\\n"
    )
    group.add_argument(
        "--fault-echo-stuck", action="store_true", help="ATE0 answers OK but echo stays on"
    )
    group.add_argument(
        "--fault-cms-on-send",
        type=_probability,
        default=0.0,
        metavar="P",
        help="probability of +CMS ERROR: 500 on AT+CMGS",
    )
    group.add_argument(
        "--fault-sent-anyway",
        type=_probability,
        default=0.0,
        metavar="P",
        help="probability that such a failed send went out all the same",
    )
    group.add_argument("--fault-invalid-cmti", action="store_true",
                       help="a bogus +CMTI after every real one")  # fmt: skip


def fault_plan(args: argparse.Namespace) -> FaultPlan:
    """The :class:`FaultPlan` the ``--fault-*`` flags ask for (ValueError when invalid)."""
    return FaultPlan(
        chunk_size=args.fault_chunk_size,
        chunk_delay=args.fault_chunk_delay,
        urc_flood=args.fault_urc_flood,
        bare_lf=args.fault_bare_lf,
        echo_stuck=args.fault_echo_stuck,
        cms_on_send=args.fault_cms_on_send,
        sent_anyway=args.fault_sent_anyway,
        invalid_cmti=args.fault_invalid_cmti,
    )


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
    run.add_argument("--log-level", default="INFO", type=str.upper,
                     choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                     help="stderr log level (DEBUG shows raw AT traffic)")  # fmt: skip
    _add_fault_flags(run)
    return parser


async def _run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
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
        ) as sim:
            sys.stdout.write(json.dumps(sim.ready_info()) + "\n")
            sys.stdout.flush()
            await stop.wait()
            LOGGER.info("signal received, shutting down")
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
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
        return asyncio.run(_run(args))
    except OSError as exc:
        LOGGER.error("cannot start: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
