"""``hostsim`` command line: ``hostsim run [--link PATH] [--log-level LEVEL]``.

The first stdout line is one JSON object announcing the ptys::

    {"event": "ready", "modems": [{"pty": "/dev/pts/N", "link": "PATH-or-null"}]}

Logs go to stderr. The simulator runs until SIGINT or SIGTERM, then removes
its symlink and exits 0. Exit 2 for usage errors (argparse), 1 when the pty
or the link cannot be created.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from hostsim.sim import HostSim

LOGGER = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hostsim", description="Emulated cellular modem on a pty")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one emulated modem until SIGINT/SIGTERM")
    run.add_argument("--link", help="stable symlink to create for the pty")
    run.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="stderr log level (DEBUG shows raw traffic)",
    )
    return parser


async def _run(link: str | None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with HostSim(link=link) as sim:
            ready = {
                "event": "ready",
                "modems": [
                    {"pty": m.path, "link": str(m.link) if m.link is not None else None}
                    for m in sim.modems
                ],
            }
            sys.stdout.write(json.dumps(ready) + "\n")
            sys.stdout.flush()
            await stop.wait()
            LOGGER.info("signal received, shutting down")
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(_run(args.link))
    except OSError as exc:
        LOGGER.error("cannot start: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
