"""Whether ``smscmd run`` loads :mod:`ssl`, decided before asyncio is imported.

asyncio imports :mod:`ssl` whenever it is there, and with it libssl and libcrypto:
4-5 MiB of the agent's resident memory (BENCHMARKS.md), for TLS that the agent itself
never uses (the modem is a serial line, the control socket a Unix one). Only an
in-process plug-in handler (or, later, an MQTT client) could use it, and only over an
IP socket. So, by ``SMSCMD_TLS`` in the environment:

* ``auto`` (the default, and an empty value): :mod:`ssl` stays out when this process
  cannot open an IP socket at all -- as under the shipped systemd unit
  (``RestrictAddressFamilies=AF_UNIX``, ``PrivateNetwork=yes``), where no TLS can
  ever be made -- and is loaded as before everywhere else;
* ``1``: always loaded; ``0``: never (a plug-in that needs TLS then fails to load,
  logged with the :class:`ImportError` below, which names this variable).

Only ``smscmd run`` asks (:func:`apply`); every other subcommand, and exec handlers
(programs of their own), are untouched. A value that is none of these is a
:class:`~device.errors.UsageError`. When :mod:`ssl` is already imported (by a
``sitecustomize``, say) nothing can be saved and nothing is changed.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from types import ModuleType

from device.errors import UsageError

#: The environment variable that decides.
ENV = "SMSCMD_TLS"
#: What :mod:`ssl` consists of: the module and its C extension.
MODULES = ("ssl", "_ssl")


class TlsChoice(Enum):
    """The values of :data:`ENV`."""

    AUTO = "auto"
    ON = "1"
    OFF = "0"


@dataclass(frozen=True, slots=True)
class Decision:
    """What :func:`apply` did: ``loaded`` False when :mod:`ssl` is kept out, and why."""

    loaded: bool
    reason: str


def choice(environ: Mapping[str, str]) -> TlsChoice:
    """:data:`ENV`'s value in ``environ`` (empty or unset: auto); UsageError otherwise."""
    value = environ.get(ENV, "").strip().lower() or TlsChoice.AUTO.value
    try:
        return TlsChoice(value)
    except ValueError:
        raise UsageError(f"{ENV}={value!r}: expected auto, 1 or 0") from None


def ip_sockets_allowed() -> bool:
    """Whether this process may open an IPv4 or IPv6 socket (it opens and closes one)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.socket(family, socket.SOCK_STREAM).close()
        except OSError:
            continue
        return True
    return False


class _KeepOut:
    """Makes ``import ssl`` raise an ImportError that says why and how to change it
    (asyncio, aiohttp and the like take any ImportError as "no TLS here")."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if fullname in MODULES:
            raise ImportError(
                f"ssl is not loaded in this agent ({self.reason}); {ENV}=1 loads it",
                name=fullname,
            )


def apply(environ: Mapping[str, str]) -> Decision:
    """Decide by ``environ`` (see the module docstring) and keep :mod:`ssl` out of this
    interpreter when so decided; call it before anything imports asyncio."""
    chosen = choice(environ)
    if any(name in sys.modules for name in MODULES):
        return Decision(True, "ssl was imported before the agent started")
    if chosen is TlsChoice.ON:
        return Decision(True, f"{ENV}=1")
    if chosen is TlsChoice.OFF:
        reason = f"{ENV}=0"
    elif ip_sockets_allowed():
        return Decision(True, "IP sockets can be opened here")
    else:
        reason = "no IP socket can be opened here"
    sys.meta_path.insert(0, _KeepOut(reason))
    return Decision(False, reason)


def admit() -> bool:
    """Let :mod:`ssl` load after all, for a part configured to need it at import time
    (``[metrics]``: ``prometheus_client`` imports it, unused by a textfile); True when
    it was kept out until now (its 4-5 MiB are then paid at the next import)."""
    kept = [finder for finder in sys.meta_path if isinstance(finder, _KeepOut)]
    for finder in kept:
        sys.meta_path.remove(finder)
    return bool(kept)


__all__ = ["ENV", "Decision", "TlsChoice", "admit", "apply", "choice", "ip_sockets_allowed"]
