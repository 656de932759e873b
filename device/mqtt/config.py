"""The ``[mqtt]`` table of the agent's configuration, read into a frozen :class:`MqttConfig`.

Only ``url`` is required; every other key takes the default shown::

    [mqtt]
    url = "mqtt://broker.lan:1883"  # mqtt:// (port 1883 by default) or mqtts:// (TLS, 8883)
    username = "gateway"            # with password: MQTT username/password authentication
    password = "secret"             #   (never logged: MqttConfig's repr leaves it out)
    ca_file = "/etc/smscmd/ca.pem"  # mqtts:// only: the CA that signed the broker's
                                    #   certificate (default: the system's CAs)
    cert_file = "client.pem"        # mqtts:// only: a client certificate, with key_file
    key_file = "client.key"         #   (a relative path is taken from the config's directory)
    client_id = "smscmd-<hostname>" # the MQTT client identifier
    topic_prefix = "smscmd/<hostname>"  # every topic is <topic_prefix>/<name>
    qos = 1                         # 0, 1 or 2, for what the agent publishes
    keepalive = 60                  # seconds between MQTT pings, integer 5 .. 65535
    queue_max = 10000               # events kept in the journal while the broker is away;
                                    #   past it the oldest is dropped (counted, logged)
    discovery = false               # true: Home Assistant MQTT discovery (retained sensor
                                    #   configs: device/mqtt/discovery.py)
    discovery_prefix = "homeassistant"  # HA's discovery prefix (its default)

Edge cases: a URL with another scheme, with a path, query or user info (credentials go in
``username``/``password``), or without a host is a :class:`~device.errors.ConfigError`
naming ``mqtt.url``; ``password`` without ``username``, ``key_file`` without
``cert_file`` (or the reverse) and TLS files on ``mqtt://`` are ConfigErrors too. A topic
prefix may not be empty, start or end with ``/`` or hold the wildcards ``+``/``#``. The
hostname in the defaults is :func:`socket.gethostname` when the file is read.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from device.errors import ConfigError

#: The URL schemes and their default ports.
SCHEMES = {"mqtt": 1883, "mqtts": 8883}
#: The broker's keepalive range (MQTT 3.1.1 §3.1.2.10 allows 0..65535; below 5 s the
#: pings alone would keep a modem link busy).
KEEPALIVE_RANGE = (5, 65535)


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """The validated ``[mqtt]`` table; see the module docstring for each key."""

    host: str
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str = ""
    topic_prefix: str = ""
    qos: int = 1
    keepalive: int = 60
    queue_max: int = 10000
    discovery: bool = False
    discovery_prefix: str = "homeassistant"

    @property
    def url(self) -> str:
        """The broker as a URL (no credentials)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def _url(value: object) -> tuple[str, int, bool]:
    if not isinstance(value, str):
        raise ValueError("expected a URL string, e.g. mqtt://localhost:1883")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from exc
    if parts.scheme not in SCHEMES:
        raise ValueError("expected an mqtt:// or mqtts:// URL")
    if not parts.hostname:
        raise ValueError("the URL names no broker host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("put credentials in mqtt.username / mqtt.password, not in the URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("an MQTT broker URL has no path, query or fragment")
    return parts.hostname, port or SCHEMES[parts.scheme], parts.scheme == "mqtts"


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _path(value: object) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string (a file path)")
    return Path(value)


def _client_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value.encode()) > 65535:
        raise ValueError("expected a non-empty string")
    return value


def _prefix(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty topic such as smscmd/gateway-1")
    if value.startswith("/") or value.endswith("/") or "//" in value:
        raise ValueError("a topic prefix has no leading, trailing or double '/'")
    if any(c in value for c in "+#\0"):
        raise ValueError("a topic prefix holds no wildcard ('+', '#') or NUL")
    return value


def _qos(value: object) -> int:
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise ValueError("expected 0, 1 or 2")
    return int(value)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _integer(low: int, high: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected an integer {low} .. {high}")
        return value

    return check


#: Key → (MqttConfig field, validator); ``url`` fills host, port and tls.
_KEYS: dict[str, tuple[str, Callable[[object], Any]]] = {
    "username": ("username", _text),
    "password": ("password", _text),
    "ca_file": ("ca_file", _path),
    "cert_file": ("cert_file", _path),
    "key_file": ("key_file", _path),
    "client_id": ("client_id", _client_id),
    "topic_prefix": ("topic_prefix", _prefix),
    "qos": ("qos", _qos),
    "keepalive": ("keepalive", _integer(*KEEPALIVE_RANGE)),
    "queue_max": ("queue_max", _integer(1, 10_000_000)),
    "discovery": ("discovery", _flag),
    "discovery_prefix": ("discovery_prefix", _prefix),
}


def mqtt_config(table: object, path: Path | None = None) -> MqttConfig:
    """``[mqtt]`` from a parsed TOML document → MqttConfig (see the module docstring).

    ``path`` is the configuration file: named in errors, and the base of relative TLS
    file paths (the working directory without one). Raises ConfigError with the dotted key.
    """
    where = str(path) if path is not None else None

    def bad(message: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, path=where, key=f"mqtt.{key}" if key else "mqtt")

    if not isinstance(table, Mapping):
        raise bad("expected a table [mqtt]")
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key == "url":
            try:
                values["host"], values["port"], values["tls"] = _url(raw)
            except ValueError as exc:
                raise bad(f"{exc}; got {raw!r}", key) from exc
            continue
        entry = _KEYS.get(key)
        if entry is None:
            raise bad(f"unknown key (known in [mqtt]: url, {', '.join(_KEYS)})", key)
        name, validate = entry
        try:
            values[name] = validate(raw)
        except ValueError as exc:
            shown = "'…'" if key == "password" else repr(raw)
            raise bad(f"{exc}; got {shown}", key) from exc
    if "host" not in values:
        raise bad('url is required, e.g. url = "mqtt://localhost:1883"', "url")
    _check_pairs(values, bad)
    base = path.parent if path is not None else Path.cwd()
    for name in ("ca_file", "cert_file", "key_file"):
        if isinstance(values.get(name), Path) and not values[name].is_absolute():
            values[name] = base / values[name]
    host = socket.gethostname() or "smscmd"
    values.setdefault("client_id", f"smscmd-{host}")
    values.setdefault("topic_prefix", f"smscmd/{_prefix_safe(host)}")
    return MqttConfig(**values)


def _check_pairs(values: Mapping[str, Any], bad: Callable[[str, str], ConfigError]) -> None:
    if "password" in values and "username" not in values:
        raise bad("password needs a username", "password")
    if ("cert_file" in values) != ("key_file" in values):
        missing = "key_file" if "cert_file" in values else "cert_file"
        raise bad("a client certificate needs both cert_file and key_file", missing)
    if not values.get("tls"):
        for name in ("ca_file", "cert_file", "key_file"):
            if name in values:
                raise bad("TLS files need an mqtts:// url", name)


def _prefix_safe(host: str) -> str:
    """A hostname as one topic level: wildcards and '/' become '_'."""
    return "".join("_" if c in "+#/\0" else c for c in host)


__all__ = ["KEEPALIVE_RANGE", "SCHEMES", "MqttConfig", "mqtt_config"]
