"""``SMSCMD_TLS``: whether ``smscmd run`` loads :mod:`ssl` (device/tls.py, issue 14:
libssl and libcrypto are 4-5 MiB of the agent's memory, for TLS it cannot use under the
shipped unit's ``RestrictAddressFamilies=AF_UNIX``). Each case runs in a fresh
interpreter, since the decision is taken before asyncio is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from device.errors import UsageError
from device.tls import ENV, TlsChoice, choice

TIMEOUT = 60

#: Applies the decision, imports asyncio, runs a loop over a socket pair, tries ssl.
PROBE = textwrap.dedent("""
    import json, os, socket, sys
    if os.environ.get("NO_IP"):  # as under RestrictAddressFamilies=AF_UNIX (seccomp)
        class Refused(socket.socket):
            def __init__(self, family=socket.AF_INET, *args, **kwargs):
                if family in (socket.AF_INET, socket.AF_INET6):
                    raise OSError(97, "Address family not supported by protocol")
                super().__init__(family, *args, **kwargs)
        socket.socket = Refused
    from device.tls import apply
    decision = apply(os.environ)
    import asyncio
    async def echo():
        a, b = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=a)
        b.sendall(b"ok")
        data = await reader.readexactly(2)
        writer.close()
        b.close()
        return data.decode()
    out = {"loaded": decision.loaded, "reason": decision.reason, "echo": asyncio.run(echo()),
           "ssl_in_modules": sys.modules.get("ssl") is not None}
    try:
        import ssl
        out["import"] = "ok"
    except ImportError as exc:
        out["import"] = str(exc)
    print(json.dumps(out))
""")


def probe(value: str | None, *, no_ip: bool = False) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "NO_IP")}
    if value is not None:
        env[ENV] = value
    if no_ip:
        env["NO_IP"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
        timeout=TIMEOUT, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, TlsChoice.AUTO), ("", TlsChoice.AUTO), (" Auto ", TlsChoice.AUTO),
     ("1", TlsChoice.ON), ("0", TlsChoice.OFF)],
)  # fmt: skip
def test_choice(value: str | None, expected: TlsChoice) -> None:
    assert choice({} if value is None else {ENV: value}) is expected


def test_a_value_that_is_no_choice_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="SMSCMD_TLS='yes': expected auto, 1 or 0"):
        choice({ENV: "yes"})


def test_auto_where_ip_sockets_open_loads_ssl_as_before() -> None:
    seen = probe(None)
    assert seen == {"loaded": True, "reason": "IP sockets can be opened here", "echo": "ok",
                    "ssl_in_modules": True, "import": "ok"}  # fmt: skip


def test_auto_without_ip_sockets_keeps_ssl_out_and_asyncio_works() -> None:
    """No IP socket (the unit's seccomp filter answers EAFNOSUPPORT): no TLS could ever
    be made, so ssl stays out; asyncio runs without it, and a plug-in's ``import ssl``
    gets an ImportError that says why and what loads it."""
    seen = probe(None, no_ip=True)
    assert seen == {
        "loaded": False, "reason": "no IP socket can be opened here", "echo": "ok",
        "ssl_in_modules": False,
        "import": "ssl is not loaded in this agent (no IP socket can be opened here); "
                  "SMSCMD_TLS=1 loads it",
    }  # fmt: skip


def test_one_loads_ssl_even_without_ip_sockets() -> None:
    seen = probe("1", no_ip=True)
    assert seen["loaded"] is True and seen["ssl_in_modules"] is True and seen["import"] == "ok"


def test_zero_keeps_ssl_out_where_ip_sockets_open() -> None:
    seen = probe("0")
    assert seen["loaded"] is False and seen["ssl_in_modules"] is False
    assert seen["import"] == "ssl is not loaded in this agent (SMSCMD_TLS=0); SMSCMD_TLS=1 loads it"


def test_run_refuses_a_bad_value_and_says_the_choice(tmp_path: Path) -> None:
    """``smscmd run`` with a bad value: exit 2, one line; with ``0`` the INFO line at
    start says ssl is not loaded (then no port: exit 2 too, after the line)."""
    env = dict(os.environ, **{ENV: "maybe"})
    bad = subprocess.run(
        [sys.executable, "-m", "device.cli", "run", "--journal", str(tmp_path / "j.sqlite3")],
        env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip() == "smscmd: SMSCMD_TLS='maybe': expected auto, 1 or 0"
    env[ENV] = "0"
    off = subprocess.run(
        [sys.executable, "-m", "device.cli", "run", "--journal", str(tmp_path / "j.sqlite3"),
         "--log-level", "INFO"],
        env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert "TLS: ssl not loaded (SMSCMD_TLS=0)" in off.stderr
    assert off.returncode == 2 and "no serial port" in off.stderr
