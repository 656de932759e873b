"""The ``[metrics]`` table of the agent's configuration. Example::

    [metrics]
    textfile_directory = "/var/lib/prometheus/node-exporter"
                             # node_exporter's textfile collector directory (Debian's
                             # default); a relative path is taken relative to the
                             # directory of the configuration file
    textfile_name = "smscmd.prom"
                             # default smscmd.prom, smscmd-NAME.prom for NAME.toml
                             # (one file per instance); must end in .prom
    interval = 15.0          # seconds between two writes of the file (number > 0)
    listen = "127.0.0.1:9101"
                             # optional HTTP endpoint (/metrics): HOST:PORT, [v6]:PORT;
                             # under the unit it needs the network option of install.sh
    name = "agent"           # the value of the ``agent`` label on every metric
                             # (default: the configuration file's stem, "agent" without one)

Edge cases: the table needs ``textfile_directory`` or ``listen`` (or both); an unknown
key, a wrong type, a name with ``/`` or without ``.prom``, a port out of 0-65535 or a
host that is no IP address and not ``localhost`` is a :class:`~device.errors.ConfigError`
naming the file and the dotted key. Port 0 takes a free port (the log says which).
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from pathlib import Path

from device.errors import ConfigError

#: Seconds between two textfile writes (and journal reads for the gauges) by default.
DEFAULT_INTERVAL = 15.0
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_KEYS = ("textfile_directory", "textfile_name", "interval", "listen", "name")


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """The validated ``[metrics]`` table: ``textfile`` is the whole path of the file
    (None: no file), ``listen`` a (host, port) pair (None: no HTTP endpoint)."""

    textfile: Path | None = None
    interval: float = DEFAULT_INTERVAL
    listen: tuple[str, int] | None = None
    name: str = "agent"


def parse_metrics(content: object, path: Path) -> MetricsConfig:
    """``[metrics]`` from the file at ``path`` → MetricsConfig; ConfigError when invalid."""
    if not isinstance(content, dict):
        raise ConfigError("expected a table [metrics]", path=str(path), key="metrics")

    def bad(message: str, key: str) -> ConfigError:
        raw = content.get(key)
        return ConfigError(f"{message}; got {raw!r}", path=str(path), key=f"metrics.{key}")

    for key in content:
        if key not in _KEYS:
            raise ConfigError(
                f"unknown key (known in [metrics]: {', '.join(_KEYS)})",
                path=str(path), key=f"metrics.{key}",
            )  # fmt: skip
    name = content.get("name", "agent" if path.stem in ("", "agent") else path.stem)
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise bad("expected letters, digits, _ . - (not first . or -)", "name")
    textfile: Path | None = None
    directory = content.get("textfile_directory")
    if directory is not None:
        if not isinstance(directory, str) or not directory:
            raise bad("expected a directory path", "textfile_directory")
        folder = Path(directory)
        if not folder.is_absolute():
            folder = path.parent / folder
        file_name = content.get("textfile_name", _default_file(name))
        if (
            not isinstance(file_name, str)
            or not _NAME_RE.fullmatch(file_name)
            or not file_name.endswith(".prom")
            or file_name == ".prom"
        ):
            raise bad("expected a file name ending in .prom (no '/')", "textfile_name")
        textfile = folder / file_name
    elif "textfile_name" in content:
        raise bad("textfile_name needs textfile_directory", "textfile_name")
    interval = content.get("interval", DEFAULT_INTERVAL)
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not math.isfinite(interval)
        or interval <= 0
    ):
        raise bad("expected a number of seconds > 0", "interval")
    listen = None
    if "listen" in content:
        try:
            listen = parse_listen(content["listen"])
        except ValueError as exc:
            raise bad(str(exc), "listen") from exc
    if textfile is None and listen is None:
        raise ConfigError(
            "needs textfile_directory or listen (or both)", path=str(path), key="metrics"
        )
    return MetricsConfig(textfile, float(interval), listen, name)


def parse_listen(value: object) -> tuple[str, int]:
    """``"127.0.0.1:9101"``, ``"[::1]:9101"``, ``"localhost:9101"`` → (host, port)."""
    if not isinstance(value, str):
        raise ValueError("expected HOST:PORT")
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", value)
    if match is None:
        raise ValueError("expected HOST:PORT (an IPv6 address in brackets)")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if port > 65535:
        raise ValueError("expected a port 0-65535")
    if host != "localhost":
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError("expected an IP address or localhost as the host") from None
        if match.group(1) is not None and address.version != 6:
            raise ValueError("brackets are for an IPv6 address")
    return host, port


def _default_file(name: str) -> str:
    return "smscmd.prom" if name == "agent" else f"smscmd-{name}.prom"


__all__ = ["DEFAULT_INTERVAL", "MetricsConfig", "parse_listen", "parse_metrics"]
