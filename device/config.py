"""Agent configuration: a TOML file read into a frozen :class:`Config`.

Every key is optional; a missing key takes the default shown. Example::

    [agent]
    port = "/dev/ttyUSB2"        # serial device of the modem; no default (CLI --port)
    journal = "/var/lib/smscmd/journal.sqlite3"
                                 # SQLite journal; a relative path is taken relative to
                                 # the directory of this file
    baudrate = 115200            # serial speed, integer > 0
    allowed_senders = ["000"]    # senders whose commands run; others are refused and
                                 # journaled. Non-empty list of strings without spaces
    reply_to = "000"             # where replies go: digits, optionally a leading '+'
    storage = "SM"               # modem message storage: two upper-case letters
                                 # (SM, ME, MT, SR, ...), or "auto": the module
                                 # profile's (ME on u-blox SARA-R4, SM elsewhere)
    log_level = "INFO"           # DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)
    control_socket = "/run/smscmd/control.sock"
                                 # UNIX socket for `smscmd send/status` (mode 0660)
    mode = "text"                # "text" (AT+CMGF=1) or "pdu" (AT+CMGF=0, multipart)
                                 # "pdu": half the bytes, for a real UART at <= 115200
                                 # (README "Text mode or PDU mode"; text on USB)
    profile = "auto"             # module profile: auto (from AT+CGMM), quectel-bg96,
                                 # quectel-eg25g, simcom-sim7600, ublox-sara-r410m,
                                 # quectel (other Quectel models), generic
    concat_timeout = 3600.0      # seconds a multipart message may wait for its parts
                                 # before it is journaled as incomplete

    [timeouts]                   # all in seconds, numbers > 0
    command = 10.0               # one AT command without its own timeout
    send = 60.0                  # one AT+CMGS (the network may be slow)
    health_interval = 60.0       # period of the health check (AT, registration, signal)
    handler = 30.0               # longest a command handler may run
    sweep_interval = 300.0       # safety sweep of the modem storage (AT+CMGL), for
                                 # messages whose +CMTI never came; and how often
                                 # finished journal rows are pruned (busy or idle)
    reconnect_initial = 0.5      # first delay before reopening a lost port; doubles
    reconnect_max = 30.0         # ... up to this cap (>= reconnect_initial)

    [outbox]
    max_attempts = 5             # sends of one reply before it is failed (integer >= 1)
    retry_initial = 10.0         # seconds before the first retry; doubles ...
    retry_max = 600.0            # ... up to this (>= retry_initial)

    [journal]
    retention_days = 30.0        # finished rows older than this are pruned (number > 0)
    keep_last = 1000             # ... but the most recent N inbox rows are always kept

    [mqtt]                       # optional: publish events to an MQTT broker; its keys
    url = "mqtt://localhost"     # are in device/mqtt/config.py (README "MQTT")
    [metrics]                    # optional: Prometheus metrics (see device/metrics/config.py)
    textfile_directory = "/var/lib/prometheus/node-exporter"
    listen = "127.0.0.1:9101"    # optional HTTP endpoint

Edge cases: an unknown table or key, a wrong type (``true`` for a number, ``"9600"`` for
an integer) or a value out of range is a :class:`~device.errors.ConfigError` naming the file
and the dotted key (``agent.baudrate``). A missing, unreadable or non-TOML file is a
ConfigError naming the file. Integers are accepted where a number of seconds is
expected; booleans never are.
"""

from __future__ import annotations

import logging
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from device.errors import ConfigError
from device.handlers import HandlerConfig

if TYPE_CHECKING:  # device.mqtt / device.metrics are loaded only for a file with the table
    from device.metrics.config import MetricsConfig
    from device.mqtt.config import MqttConfig

LOGGER = logging.getLogger(__name__)

DEFAULT_JOURNAL = Path("/var/lib/smscmd/journal.sqlite3")
DEFAULT_CONTROL_SOCKET = Path("/run/smscmd/control.sock")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_STORAGE_RE = re.compile(r"[A-Z]{2}")
#: A phone number as the agent accepts one (``reply_to``, ``smscmd send --to``):
#: digits, optionally a leading ``+``; matched whole (``fullmatch``).
PHONE_NUMBER_RE = re.compile(r"\+?[0-9]{1,20}")


@dataclass(frozen=True, slots=True)
class Config:
    """The validated agent configuration; see the module docstring for each key."""

    port: str | None = None
    journal: Path = DEFAULT_JOURNAL
    allowed_senders: tuple[str, ...] = ("000",)
    reply_to: str = "000"
    storage: str = "SM"
    baudrate: int = 115200
    command_timeout: float = 10.0
    send_timeout: float = 60.0
    health_interval: float = 60.0
    handler_timeout: float = 30.0
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    log_level: str = "INFO"
    control_socket: Path = DEFAULT_CONTROL_SOCKET
    mode: str = "text"
    profile: str = "auto"
    concat_timeout: float = 3600.0
    sweep_interval: float = 300.0
    send_max_attempts: int = 5
    send_retry_initial: float = 10.0
    send_retry_max: float = 600.0
    retention_days: float = 30.0
    keep_last: int = 1000
    handlers: tuple[HandlerConfig, ...] = ()
    mqtt: MqttConfig | None = None
    #: The ``[metrics]`` table; None when absent (nothing of prometheus_client loads).
    metrics: MetricsConfig | None = None


# --------------------------------------------------------------------------- validators
#
# Each validator takes the raw value and returns the typed one, or raises ValueError
# with what is expected; the caller adds the file and the key.


def _port(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string (a serial device path)")
    return value


def _path(value: object) -> Path:
    if isinstance(value, Path):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string (a file path)")
    return Path(value)


def _senders(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError('expected a list of strings, e.g. ["000"]')
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item or item != "".join(item.split()):
            raise ValueError(f"expected non-empty strings without whitespace, got {item!r}")
        if item not in out:
            out.append(item)
    if not out:
        raise ValueError("expected at least one sender (Super SIM commands come from '000')")
    return tuple(out)


def _number(value: object) -> str:
    if not isinstance(value, str) or not PHONE_NUMBER_RE.fullmatch(value):
        raise ValueError("expected a phone number string: digits, optionally a leading '+'")
    return value


def _storage(value: object) -> str:
    if not isinstance(value, str) or not (value == "auto" or _STORAGE_RE.fullmatch(value)):
        raise ValueError('expected two upper-case letters, e.g. "SM", "ME" or "MT", or "auto"')
    return value


def _baudrate(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("expected an integer > 0, e.g. 115200")
    return value


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a number of seconds > 0")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("expected a number of seconds > 0")
    return seconds


def _count(minimum: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"expected an integer >= {minimum}")
        return value

    return check


def _mode(value: object) -> str:
    from device.modem.modes import MODES

    if not isinstance(value, str) or value.lower() not in MODES:
        raise ValueError("expected " + " or ".join(f'"{name}"' for name in MODES))
    return value.lower()


def _profile(value: object) -> str:
    from device.modem.profiles import PROFILES

    if not isinstance(value, str) or (value != "auto" and value not in PROFILES):
        raise ValueError(f"expected auto or one of {', '.join(PROFILES)}")
    return value


def _log_level(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return value.upper()


#: (table, key) in the file → (Config field, validator).
_KEYS: dict[str, dict[str, tuple[str, Callable[[object], Any]]]] = {
    "agent": {
        "port": ("port", _port),
        "journal": ("journal", _path),
        "baudrate": ("baudrate", _baudrate),
        "allowed_senders": ("allowed_senders", _senders),
        "reply_to": ("reply_to", _number),
        "storage": ("storage", _storage),
        "log_level": ("log_level", _log_level),
        "control_socket": ("control_socket", _path),
        "mode": ("mode", _mode),
        "profile": ("profile", _profile),
        "concat_timeout": ("concat_timeout", _seconds),
    },
    "timeouts": {
        "command": ("command_timeout", _seconds),
        "send": ("send_timeout", _seconds),
        "health_interval": ("health_interval", _seconds),
        "handler": ("handler_timeout", _seconds),
        "reconnect_initial": ("reconnect_initial", _seconds),
        "reconnect_max": ("reconnect_max", _seconds),
        "sweep_interval": ("sweep_interval", _seconds),
    },
    "outbox": {
        "max_attempts": ("send_max_attempts", _count(1)),
        "retry_initial": ("send_retry_initial", _seconds),
        "retry_max": ("send_retry_max", _seconds),
    },
    "journal": {
        "retention_days": ("retention_days", _seconds),
        "keep_last": ("keep_last", _count(0)),
    },
}

#: Config field → validator, for overrides.
_FIELD_VALIDATORS: dict[str, Callable[[object], Any]] = {
    field: validator for table in _KEYS.values() for field, validator in table.values()
}
_FIELD_KEYS: dict[str, str] = {
    field: f"{table}.{key}" for table, keys in _KEYS.items() for key, (field, _) in keys.items()
}


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot read configuration file: {reason}", path=str(path)) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from exc


def _from_document(doc: Mapping[str, Any], path: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for table, content in doc.items():
        if table == "handlers":
            values["handlers"] = _handlers(content, path)
            continue
        if table == "metrics":  # its own module, loaded only then
            from device.metrics.config import parse_metrics

            values["metrics"] = parse_metrics(content, path)
            continue
        if table == "mqtt":  # its own module, loaded only then
            from device.mqtt.config import mqtt_config

            values["mqtt"] = mqtt_config(content, path)
            continue
        spec = _KEYS.get(table)
        if spec is None:
            known = ", ".join(f"[{t}]" for t in (*_KEYS, "handlers", "mqtt", "metrics"))
            raise ConfigError(
                f"unknown table or key (known tables: {known})", path=str(path), key=table
            )
        if not isinstance(content, dict):
            raise ConfigError(f"expected a table [{table}]", path=str(path), key=table)
        for key, raw in content.items():
            dotted = f"{table}.{key}"
            entry = spec.get(key)
            if entry is None:
                known = ", ".join(spec)
                raise ConfigError(
                    f"unknown key (known in [{table}]: {known})", path=str(path), key=dotted
                )
            field, validator = entry
            try:
                values[field] = validator(raw)
            except ValueError as exc:
                raise ConfigError(f"{exc}; got {raw!r}", path=str(path), key=dotted) from exc
    remote = next((h for h in values.get("handlers", ()) if h.mqtt), None)
    if remote is not None and "mqtt" not in doc:
        raise ConfigError("mqtt = true needs the [mqtt] table (the broker)", path=str(path),
                          key=f'handlers."{remote.name}".mqtt')  # fmt: skip
    for name in ("journal", "control_socket"):
        value = values.get(name)
        if isinstance(value, Path) and not value.is_absolute():
            values[name] = path.parent / value
    return values


def _argv(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(a, str) and a for a in value):
        raise ValueError("expected a non-empty list of strings (no shell is used)")
    return tuple(value)


def _argument_mode(value: object) -> str:
    if value not in ("argv", "stdin"):
        raise ValueError('expected "argv" or "stdin"')
    return str(value)


def _env(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("expected a table of strings")
    return tuple(sorted(value.items()))


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _quoting(check: Callable[[object], Any]) -> Callable[[object], Any]:
    """``check`` with the offending value quoted in its error, as the top-level keys do."""

    def validate(value: object) -> Any:
        try:
            return check(value)
        except ValueError as exc:
            raise ValueError(f"{exc}; got {value!r}") from exc

    return validate


#: ``[handlers."<name>"]`` keys: each validator returns the HandlerConfig field value or
#: raises ValueError with the message for that key (checked in this order).
_HANDLER_FIELDS: dict[str, Callable[[object], Any]] = {
    "argv": _argv,
    "argument": _argument_mode,
    "cwd": _path,
    "env": _env,
    "timeout": _quoting(_seconds),
    "per": _quoting(_seconds),
    "output_limit": _quoting(_count(1)),
    "rate": _quoting(_count(1)),
    "concurrency": _quoting(_count(1)),
    "idempotent": _flag,
    "enabled": _flag,
    "summary": _text,
    "mqtt": _flag,
}
_HANDLER_KEYS = frozenset(_HANDLER_FIELDS)
#: The keys a table without ``argv`` may hold: it adjusts an existing handler.
_ADJUSTING = frozenset({"name", "enabled", "idempotent", "rate", "per", "concurrency"})
#: The keys of a program, which an ``mqtt = true`` table may not hold.
_EXEC_ONLY = frozenset({"argument", "cwd", "env", "output_limit"})


def _handlers(content: object, path: Path) -> tuple[HandlerConfig, ...]:
    """``[handlers."<name>"]`` tables → HandlerConfig, with file and dotted key in errors."""
    if not isinstance(content, dict):
        raise ConfigError('expected tables [handlers."<name>"]', path=str(path), key="handlers")
    out: list[HandlerConfig] = []
    for raw_name, table in content.items():
        name = " ".join(raw_name.split()).lower()
        where = f'handlers."{raw_name}"'

        def bad(message: str, key: str | None = None, where: str = where) -> ConfigError:
            return ConfigError(message, path=str(path), key=f"{where}.{key}" if key else where)

        if not name or ":" in name:
            raise bad("a command name is non-empty and has no ':'")
        if not isinstance(table, dict):
            raise bad("expected a table")
        unknown = set(table) - _HANDLER_KEYS
        if unknown:
            raise bad(f"unknown key (known: {', '.join(sorted(_HANDLER_KEYS))})", min(unknown))
        fields: dict[str, Any] = {"name": name}
        for key, validate in _HANDLER_FIELDS.items():
            if key in table:
                try:
                    fields[key] = validate(table[key])
                except ValueError as exc:
                    raise bad(str(exc), key) from exc
        if fields.pop("mqtt", False):  # mqtt = false: as if not given
            if "argv" in fields or set(fields) & _EXEC_ONLY:
                raise bad("an mqtt handler has no program: argv, argument, cwd, env and "
                          "output_limit are for exec handlers", "mqtt")  # fmt: skip
            if any(c in name for c in "/+#"):
                raise bad("an mqtt handler's name is one topic level: no '/', '+' or '#'",
                          "mqtt")  # fmt: skip
            out.append(HandlerConfig(**fields, mqtt=True))
            continue
        if "argv" not in fields and set(fields) - _ADJUSTING:
            raise bad("argv is required for a program (without it only enabled, idempotent, "
                      "rate, per and concurrency adjust an existing handler)")  # fmt: skip
        if "cwd" in fields and not fields["cwd"].is_absolute():
            fields["cwd"] = path.parent / fields["cwd"]
        out.append(HandlerConfig(**fields))
    return tuple(out)


def load_config(path: str | Path | None, **overrides: Any) -> Config:
    """Read the configuration file at ``path`` (None → defaults), then apply overrides.

    ``overrides`` are Config field names (``port=``, ``journal=``, ``log_level=`` …), as
    given by command-line flags; a None value means "not given" and is skipped. Overrides
    are validated like file values (ConfigError with the dotted key, no file). An unknown
    override name is a TypeError (a programming error).
    """
    values: dict[str, Any] = {}
    where: str | None = None
    if path is not None:
        file = Path(path)
        where = str(file)
        values.update(_from_document(_read(file), file))
    for name, raw in overrides.items():
        if raw is None:
            continue
        validator = _FIELD_VALIDATORS.get(name)
        if validator is None:
            raise TypeError(f"load_config() got an unknown override {name!r}")
        try:
            values[name] = validator(raw)
        except ValueError as exc:
            raise ConfigError(f"{exc}; got {raw!r}", key=f"{name} (override)") from exc
    config = replace(Config(), **values)
    for upper, lower in (
        ("reconnect_max", "reconnect_initial"),
        ("send_retry_max", "send_retry_initial"),
    ):
        if getattr(config, upper) < getattr(config, lower):
            raise ConfigError(
                f"must be >= {_FIELD_KEYS[lower]} ({getattr(config, lower)} s)",
                path=where,
                key=_FIELD_KEYS[upper],
            )
    LOGGER.debug("configuration %s: %s", where or "(defaults)", config)
    return config


#: Dotted key in the file → Config field (the inverse of the table above).
FIELD_OF_KEY: dict[str, str] = {key: field for field, key in _FIELD_KEYS.items()}

#: The Config field names, for a CLI that maps flags onto overrides.
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Config))


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two configurations: the dotted key as in the file
    (``agent.log_level``, ``handlers."uptime"``), the value before and after (None
    when a handler table was added or removed)."""

    key: str
    before: object
    after: object

    def __str__(self) -> str:
        if self.before is None:
            return f"{self.key}: added"
        if self.after is None:
            return f"{self.key}: removed"
        return f"{self.key}: {self.before!r} -> {self.after!r}"


def config_changes(old: Config, new: Config) -> tuple[Change, ...]:
    """What differs from ``old`` to ``new``, key by key, in the order of the file's tables.

    Handlers are compared by name: a table added, removed, or changed in any field is one
    Change each (a changed one carries both :class:`HandlerConfig` values). Equal
    configurations give ``()``.
    """
    changes = [
        Change(_FIELD_KEYS[name], getattr(old, name), getattr(new, name))
        for name in _FIELD_KEYS
        if getattr(old, name) != getattr(new, name)
    ]
    if old.mqtt != new.mqtt:
        changes.append(Change("mqtt", old.mqtt, new.mqtt))
    before = {h.name: h for h in old.handlers}
    after = {h.name: h for h in new.handlers}
    for name in [*before, *(n for n in after if n not in before)]:
        if before.get(name) != after.get(name):
            changes.append(Change(f'handlers."{name}"', before.get(name), after.get(name)))
    if old.metrics != new.metrics:
        changes.append(Change("metrics", old.metrics, new.metrics))
    return tuple(changes)
