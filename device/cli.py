"""``smscmd``: the command-line entry point.

Commands:

* ``smscmd run --port PATH [--journal FILE] [--config FILE]`` — the agent,
  until SIGINT or SIGTERM.
* ``smscmd journal [--journal FILE] [--config FILE] [--json] [--limit N]`` —
  the inbox, newest last.
* ``smscmd demo`` — hostsim and the agent in one process: a first look.

Exit status: 0 success, 1 runtime failure (journal unusable, demo failed),
2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from device import __version__
from device.commands import default_registry
from device.config import Config, load_config
from device.errors import ConfigError, JournalError, SmscmdError
from device.journal import Journal

if TYPE_CHECKING:
    from device.agent import Agent

LOGGER = logging.getLogger("smscmd")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smscmd",
        description="Receive Super SIM SMS Commands on a cellular modem, run them, reply to 000.",
    )
    parser.add_argument("--version", action="version", version=f"smscmd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", metavar="FILE", help="TOML configuration file")
        p.add_argument("--journal", metavar="FILE", help="SQLite journal (overrides config)")
        p.add_argument(
            "--log-level",
            metavar="LEVEL",
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            type=str.upper,
            help="DEBUG shows raw AT traffic (overrides config)",
        )

    run = sub.add_parser("run", help="run the agent on a serial port until stopped")
    common(run)
    run.add_argument("--port", metavar="PATH", help="the modem's AT port, e.g. /dev/ttyUSB2")

    journal = sub.add_parser("journal", help="show received commands and their replies")
    common(journal)
    journal.add_argument("--json", action="store_true", help="print a JSON array")
    journal.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="only the last N rows (default all)",
    )

    demo = sub.add_parser("demo", help="run the agent against an in-process hostsim modem")
    demo.add_argument("--journal", metavar="FILE", help="keep the demo journal in FILE")
    demo.add_argument(
        "--log-level",
        metavar="LEVEL",
        default="WARNING",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="agent log level on stderr (default WARNING)",
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # transitions logs every callback at INFO; our own lifecycle line says it once.
    logging.getLogger("transitions").setLevel(max(logging.WARNING, logging.getLogger().level))


def _load(args: argparse.Namespace) -> Config:
    overrides: dict[str, object] = {}
    if getattr(args, "port", None):
        overrides["port"] = args.port
    if getattr(args, "journal", None):
        overrides["journal"] = Path(args.journal)
    if getattr(args, "log_level", None):
        overrides["log_level"] = args.log_level
    return load_config(args.config, **overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from device.demo import run_demo  # only the demo imports hostsim

            setup_logging(args.log_level)
            return asyncio.run(run_demo(journal=args.journal))
        config = _load(args)
        setup_logging(config.log_level)
        if args.command == "run":
            return cmd_run(config)
        return cmd_journal(config, as_json=args.json, limit=args.limit)
    except ConfigError as exc:
        print(f"smscmd: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except JournalError as exc:
        print(f"smscmd: journal error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except SmscmdError as exc:
        print(f"smscmd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


def cmd_run(config: Config) -> int:
    if config.port is None:
        raise ConfigError("no serial port: give --port or set agent.port", key="agent.port")
    return asyncio.run(_run_agent(config))


async def _run_agent(config: Config) -> int:
    from device.agent import Agent

    with Journal.open(config.journal) as journal:
        agent = Agent(config, journal, default_registry())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, _stopper(agent, signum))
        LOGGER.info("smscmd %s on %s, journal %s", __version__, config.port, config.journal)
        try:
            await agent.run()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    return EXIT_OK


def _stopper(agent: Agent, signum: int) -> Callable[[], None]:
    def stop() -> None:
        LOGGER.info("%s received; stopping", signal.Signals(signum).name)
        agent.stop()

    return stop


def cmd_journal(config: Config, *, as_json: bool, limit: int | None) -> int:
    if not config.journal.exists():
        raise JournalError(f"{config.journal} does not exist (has the agent run yet?)")
    with Journal.open(config.journal) as journal:
        rows = journal.inbox(limit=limit)
    if as_json:
        json.dump([row.as_dict() for row in rows], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for row in rows:
        stamp = row.timestamp.isoformat() if row.timestamp else "-"
        reply = "" if row.reply is None else f" -> {row.reply!r}"
        print(
            f"{row.id:>6} {stamp} {row.sender or '?':>8} {row.state.value:<11} {row.text!r}{reply}"
        )
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
