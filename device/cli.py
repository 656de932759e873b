"""``smscmd``: the command-line entry point.

Commands:

* ``smscmd run --port PATH [--journal FILE] [--config FILE]`` — the agent,
  until SIGINT or SIGTERM; SIGHUP reloads the configuration. The configuration
  (handler programs included) is checked first, as ``check-config`` does.
* ``smscmd journal [--outbox] [--state S] [--since WHEN] [--limit N] [--follow]
  [--json]`` — the inbox (or outbox), newest last, from the running agent's
  journal unless ``--journal``/``--config`` name one (:mod:`device.journalcmd`).
* ``smscmd send TEXT [--to NUMBER]`` — an SMS to 000 through the running
  agent's outbox (control socket), or directly on ``--port`` when none runs; a
  NUMBER other than 000 is sent after a warning (a Super SIM reaches only 000).
* ``smscmd status [--json]`` — the running agent's state, module, ICCID and
  counters.
* ``smscmd check-config FILE`` — validate a configuration file, list the
  handlers, check that each exec handler's program exists and is executable
  (one line per problem, exit 2).
* ``smscmd probe --port PATH [--json]`` — is this modem ready for SMS Commands?
* ``smscmd demo`` — hostsim and the agent in one process: a first look
  (one line, exit 1, where hostsim is not installed: the gateway .deb).

Exit status: 0 success, 1 runtime failure (journal unusable, demo failed),
2 bad usage or configuration, 141 stdout closed early (``| head``). Ordinary
failures (an unusable port, see :mod:`device.portcheck`; no agent; an
unreadable journal) are one ``smscmd: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from device import __version__
from device.errors import ConfigError, JournalError, SmscmdError, UsageError

if TYPE_CHECKING:
    from device.config import Config

# Each subcommand imports what it needs when it runs (asyncio, the configuration,
# the journal, the modem, hostsim for ``demo``): ``smscmd --help`` and ``import
# device.cli`` load only argparse and device.errors, and ``smscmd run`` loads none
# of the other subcommands' modules.

LOGGER = logging.getLogger("smscmd")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
#: The one number a Twilio Super SIM reaches by SMS: the SmsCommands API's.
SUPER_SIM_NUMBER = "000"


def _columns() -> int:
    """The terminal's width as :func:`shutil.get_terminal_size` gives it (``COLUMNS``,
    else the terminal of stdout, else 80), without importing :mod:`shutil`."""
    with contextlib.suppress(KeyError, ValueError):
        if (columns := int(os.environ["COLUMNS"])) > 0:
            return columns
    try:
        columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        columns = 0
    return columns if columns > 0 else 80


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, whose width argparse would take from :mod:`shutil`,
    which imports bz2 and lzma: 0.65 MiB of the agent's memory (BENCHMARKS.md)."""

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
        width: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(
            prog, indent_increment, max_help_position, _columns() - 2 if width is None else width
        )


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser (and its subcommands') with :class:`_Formatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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

    def socket_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--socket", metavar="PATH", help="control socket (overrides agent.control_socket)"
        )

    run = sub.add_parser("run", help="run the agent on a serial port until stopped")
    common(run)
    socket_flag(run)
    run.add_argument("--port", metavar="PATH", help="the modem's AT port, e.g. /dev/ttyUSB2")
    run.add_argument(
        "--mode", choices=["text", "pdu"], help="SMS mode of the modem (overrides agent.mode)"
    )

    send = sub.add_parser(
        "send",
        help="send an SMS to 000 through the running agent (or directly on --port)",
    )
    common(send)
    socket_flag(send)
    send.add_argument("text", help="the message: GSM 03.38 characters, at most 160 septets")
    send.add_argument(
        "--to",
        metavar="NUMBER",
        help="destination (default agent.reply_to); a Super SIM reaches only 000: "
        "another number is sent after a warning",
    )
    send.add_argument(
        "--port", metavar="PATH", help="when no agent runs, send directly on this modem port"
    )

    status = sub.add_parser("status", help="show the running agent's state and counters")
    common(status)
    socket_flag(status)
    status.add_argument("--json", action="store_true", help="print one JSON object")

    journal = sub.add_parser("journal", help="show received commands and their replies")
    common(journal)
    socket_flag(journal)
    journal_options(journal)

    check = sub.add_parser(
        "check-config", help="validate a configuration file and its handlers' programs"
    )
    check.add_argument("file", metavar="FILE", help="the TOML configuration file")

    probe = sub.add_parser("probe", help="check that a modem can receive SMS Commands")
    probe.add_argument("--port", metavar="PATH", required=True, help="the modem's AT port")
    probe.add_argument("--json", action="store_true", help="print one JSON object")
    probe.add_argument("--baudrate", type=_positive_int, default=115200, help="(default 115200)")
    probe.add_argument(
        "--log-level", metavar="LEVEL", default="WARNING", type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="DEBUG shows the AT traffic",
    )  # fmt: skip

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


def journal_options(journal: argparse.ArgumentParser) -> None:
    """``smscmd journal``'s own options (the common ones come from :func:`build_parser`);
    :mod:`device.journalcmd` reads them."""
    journal.add_argument("--json", action="store_true", help="print a JSON array")
    journal.add_argument(
        "--outbox", action="store_true", help="list the outbox (replies, sent messages)"
    )
    journal.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                         help="only the last N rows (default all)")  # fmt: skip
    journal.add_argument("--state", action="append", metavar="STATE",
                         help="only rows in this state (repeatable), e.g. failed")  # fmt: skip
    journal.add_argument("--since", metavar="WHEN",
                         help="only rows from WHEN: 2026-01-31T08:00, 30m, 2h, 7d")  # fmt: skip
    journal.add_argument("--follow", "-f", action="store_true",
                         help="keep printing new rows and state changes until Ctrl-C")  # fmt: skip


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class JournaldFormatter(logging.Formatter):
    """``<priority>name: message`` — systemd-journald reads the syslog priority from the
    prefix and adds its own time stamp, so none is written here."""

    PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
                  (logging.INFO, 6))  # fmt: skip

    def format(self, record: logging.LogRecord) -> str:
        priority = next((p for lvl, p in self.PRIORITIES if record.levelno >= lvl), 7)
        text = super().format(record)
        # One journal entry per line: continuation lines (tracebacks) keep the priority.
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def setup_logging(level: str) -> None:
    """Log to stderr; under systemd (``JOURNAL_STREAM`` set) in journald's own form."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournaldFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[handler], force=True)
    # transitions logs every callback at INFO; our own lifecycle line says it once.
    logging.getLogger("transitions").setLevel(max(logging.WARNING, logging.getLogger().level))


def _load(args: argparse.Namespace) -> Config:
    from device.config import load_config

    overrides: dict[str, object] = {}
    if getattr(args, "port", None):
        overrides["port"] = args.port
    if getattr(args, "journal", None):
        overrides["journal"] = Path(args.journal)
    if getattr(args, "log_level", None):
        overrides["log_level"] = args.log_level
    if getattr(args, "mode", None):
        overrides["mode"] = args.mode
    if getattr(args, "socket", None):
        overrides["control_socket"] = Path(args.socket)
    return load_config(args.config, **overrides)


def _checked(args: argparse.Namespace) -> Config:
    """The configuration again (for a reload), checked as at start."""
    from device.preflight import check

    config = _load(args)
    check(config, args.config)
    return config


def _start(args: argparse.Namespace) -> int:
    """``smscmd run``: whether ssl is loaded (:mod:`device.tls`, before asyncio), the
    modules construct imports but never uses deferred (:mod:`device.deferred`), the
    configuration checked (exit 2), the port checked, then the agent."""
    from device.deferred import defer
    from device.tls import apply

    tls = apply(os.environ)
    defer()
    import asyncio

    config = _load(args)
    setup_logging(config.log_level)
    LOGGER.log(
        logging.DEBUG if tls.loaded else logging.INFO,
        "TLS: ssl %s (%s)", "loaded" if tls.loaded else "not loaded", tls.reason,
    )  # fmt: skip
    from device.preflight import check

    check(config, args.config)  # the configuration before the port (exit 2)
    if config.port is not None:
        asyncio.run(_check_port(config.port, config.control_socket, missing_ok=True, busy_ok=True))
    return cmd_run(config, reload=lambda: _checked(args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _start(args)
        import asyncio

        if args.command == "probe":
            setup_logging(args.log_level)
            return asyncio.run(cmd_probe(args.port, args.baudrate, as_json=args.json))
        if args.command == "check-config":
            return cmd_check_config(args.file)
        if args.command == "demo":
            from device.demo import require_simulator, run_demo  # only the demo imports hostsim

            require_simulator()
            setup_logging(args.log_level)
            return asyncio.run(run_demo(journal=args.journal))
        config = _load(args)
        setup_logging(config.log_level)
        if args.command == "send":
            return asyncio.run(cmd_send(config, args.text, args.to))
        if args.command == "status":
            return asyncio.run(cmd_status(config, as_json=args.json))
        return cmd_journal(config, args)
    except ConfigError as exc:
        print(f"smscmd: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"smscmd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except JournalError as exc:
        print(f"smscmd: journal error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except SmscmdError as exc:
        print(f"smscmd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _stdout_gone()


def _stdout_gone() -> int:
    """The reader of stdout went away (``smscmd journal | head``): stop quietly.

    stdout is pointed at /dev/null so that the interpreter's final flush cannot
    raise again; the status is the shell's for a writer killed by SIGPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13


async def _check_port(
    port: str, control_socket: Path, *, missing_ok: bool = False, busy_ok: bool = False
) -> None:
    """PortError in one line when ``port`` cannot be used; names the agent when it holds it.

    ``missing_ok``: a port that does not exist yet passes (the agent waits for it).
    ``busy_ok``: a port held by something other than the agent on ``control_socket``
    passes (``run`` then reports the journal lock or the open failure itself).
    """
    from device.control import ControlError, request
    from device.portcheck import PortBusy, PortMissing, check_port

    try:
        check_port(port)
    except PortMissing:
        if not missing_ok:
            raise
    except PortBusy as busy:
        try:
            answer = await request(control_socket, {"op": "status"}, timeout=2.0)
        except ControlError:
            if busy_ok:
                return
            raise busy from None
        if answer.get("ok"):
            raise PortBusy(f"{port}: the agent is running; use smscmd status") from None
        if not busy_ok:
            raise


def cmd_run(config: Config, reload: Callable[[], Config] | None = None) -> int:
    if config.port is None:
        raise ConfigError("no serial port: give --port or set agent.port", key="agent.port")
    import asyncio

    from device.service import run_service

    asyncio.run(run_service(config, reload=reload))
    return EXIT_OK


def cmd_check_config(file: str) -> int:
    """Validate ``file``: every problem on a line of its own (exit 2), else the handlers."""
    from device.config import load_config
    from device.preflight import review

    config = load_config(file)  # a file that does not load is one ConfigError (exit 2)
    registry, problems = review(config, file)
    if registry is None or problems:
        for problem in problems:
            print(f"smscmd: configuration error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    execs = {cfg.name: cfg for cfg in config.handlers if cfg.argv}
    print(f"{file}: ok, {len(registry)} handler(s)")
    for name in registry.names():
        handler = registry.get(name)
        state = "" if handler is None or handler.enabled else " (disabled)"
        exec_cfg = execs.get(name)
        kind = "exec " + " ".join(exec_cfg.argv or ()) if exec_cfg else "built-in or plug-in"
        print(f"  {name:<16} {kind}{state}")
    return EXIT_OK


async def cmd_send(config: Config, text: str, to: str | None) -> int:
    """Through the running agent's outbox; when none runs, straight to the modem.

    A ``--to`` other than :data:`SUPER_SIM_NUMBER` is sent all the same, after one
    warning line on stderr: the Super SIM network refuses it (``+CMS ERROR: 21``)."""
    from device.control import AgentNotRunning, check_sms_text, request

    check_sms_text(text)
    if to is not None and to != SUPER_SIM_NUMBER:
        print(f"smscmd: warning: a Super SIM reaches only {SUPER_SIM_NUMBER} by SMS; {to} "
              "will most likely be refused by the network", file=sys.stderr)  # fmt: skip
    message: dict[str, object] = {"op": "send", "text": text}
    if to is not None:
        message["to"] = to
    try:
        answer = await request(config.control_socket, message)
    except AgentNotRunning:
        if config.port is None:
            raise
        return await _send_direct(config, text, to or config.reply_to)
    if not answer.get("ok"):
        print(f"smscmd: the agent refused: {answer.get('error')}", file=sys.stderr)
        return EXIT_FAILURE
    outbox = answer["outbox"]
    print(f"queued as outbox #{outbox['id']} for {outbox['destination']}")
    return EXIT_OK


async def _send_direct(config: Config, text: str, destination: str) -> int:
    from device.at.channel import AtChannel
    from device.modem import Modem, SmsSettings

    assert config.port is not None
    LOGGER.info("no agent running; sending directly on %s", config.port)
    await _check_port(config.port, config.control_socket)
    channel = await AtChannel.open(
        config.port, baudrate=config.baudrate, default_timeout=config.command_timeout
    )
    try:
        modem = Modem(channel, SmsSettings(storage=config.storage))
        await modem.prepare_send()
        mr = await modem.send_text(destination, text, timeout=config.send_timeout)
    finally:
        await channel.close()
    print(f"sent directly to {destination} (message reference {mr})")
    return EXIT_OK


async def cmd_probe(port: str, baudrate: int, *, as_json: bool) -> int:
    """Exit 0 when the modem is ready to receive SMS Commands, 1 with the reasons otherwise."""
    from device.config import DEFAULT_CONTROL_SOCKET
    from device.portcheck import PortError
    from device.probe import ProbeReport, probe, render

    try:
        await _check_port(port, DEFAULT_CONTROL_SOCKET)
    except PortError as exc:
        report = ProbeReport(port)
        report.reasons.append(str(exc))
    else:
        report = await probe(port, baudrate=baudrate)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(render(report))
    return EXIT_OK if report.ready else EXIT_FAILURE


async def cmd_status(config: Config, *, as_json: bool) -> int:
    from device.control import request

    answer = await request(config.control_socket, {"op": "status"})
    if not answer.get("ok"):
        print(f"smscmd: {answer.get('error')}", file=sys.stderr)
        return EXIT_FAILURE
    status = answer["status"]
    if as_json:
        json.dump(status, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for line in status_lines(status):
        print(line)
    sys.stdout.flush()  # a closed pipe raises here, inside main's handler
    return EXIT_OK


def status_lines(status: dict[str, Any]) -> list[str]:
    """``smscmd status`` for a person: one ``label  value`` per line, labels aligned."""
    module = status["module"]
    described = " ".join(str(module[k]) for k in ("manufacturer", "model", "revision") if module[k])
    rows: list[tuple[str, object]] = [
        ("state", f"{status['state']} (since {status['state_since']})"),
        ("port", status["port"]),
        ("module", described or "unknown"),
        ("imei", module["imei"] or "unknown"),
        ("iccid", module.get("iccid") or "unknown"),
        ("registration", status["registration"]),
        ("signal", status["signal"]),
        ("uptime", f"{status['uptime_seconds']} s"),
        ("journal", status.get("journal_path", "unknown")),
        *(("trouble", text) for text in status.get("trouble", [])),
        *_last_error(status.get("last_error")),
        *status["counters"].items(),
        *status["journal"].items(),
    ]
    width = max(13, *(len(label) for label, _ in rows)) + 1
    return [f"{label:<{width}}{value}" for label, value in rows]


def _last_error(note: object) -> list[tuple[str, object]]:
    """The ``last error`` row: its time and text (none when there is none to show)."""
    if not isinstance(note, dict):
        return []
    return [("last error", f"{note.get('at')} {note.get('text')}")]


def cmd_journal(config: Config, args: argparse.Namespace) -> int:
    """``--journal``, else ``--config``'s journal, else the running agent's, else the default."""
    import asyncio

    from device.journalcmd import show

    path = config.journal
    if not args.journal and not args.config:
        path = asyncio.run(_agent_journal(config)) or path
    show(path, args)
    return EXIT_OK


async def _agent_journal(config: Config) -> Path | None:
    """The journal the agent on the control socket reports, None when none answers."""
    from device.control import ControlError, request

    try:
        answer = await request(config.control_socket, {"op": "status"}, timeout=5.0)
    except ControlError as exc:
        LOGGER.debug("journal: no agent to ask (%s); using %s", exc, config.journal)
        return None
    reported = answer.get("status", {}).get("journal_path") if answer.get("ok") else None
    return Path(reported) if isinstance(reported, str) else None


if __name__ == "__main__":
    raise SystemExit(main())
