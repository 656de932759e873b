"""``mqtts://`` against a real Mosquitto TLS listener (tests/mqtt/broker.py's broker with
a certificate made here by the openssl command): the agent's link verifies the broker
with ``ca_file`` and connects; a broker whose certificate another CA signed is refused.
Under the unit this needs ``install.sh --agent-network`` (IP sockets, so device/tls.py
loads ssl): tests/test_nspawn.py checks that libssl is loaded there.

Source: mosquitto.conf(5) (a ``listener`` followed by ``cafile``, ``certfile``,
``keyfile`` serves TLS on it); RFC 6125 §6.2.1 / Python's ssl: an IP address is matched
against the certificate's iPAddress subjectAltName.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt.broker import Mosquitto

from device.mqtt import MqttLink, mqtt_config
from device.retry import Backoff


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def authority(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            f"/CN={name}", "-keyout", key, "-out", cert)  # fmt: skip
    return cert, key


def server_certificate(directory: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """The broker's certificate for 127.0.0.1, signed by ``ca``."""
    key, request, cert = (directory / n for n in ("server.key", "server.csr", "server.pem"))
    extensions = directory / "san.ext"
    extensions.write_text("subjectAltName = IP:127.0.0.1\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key,
            "-out", request)  # fmt: skip
    openssl("x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-days", "2", "-extfile", extensions, "-out", cert)  # fmt: skip
    return cert, key


class TlsMosquitto(Mosquitto):
    """Mosquitto with a TLS listener only (the certificate files in its directory)."""

    def _write_config(self) -> Path:
        d = self.directory
        user = pwd.getpwuid(os.getuid()).pw_name
        conf = d / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\ncafile {d / 'ca.pem'}\n"
            f"certfile {d / 'server.pem'}\nkeyfile {d / 'server.key'}\n"
            f"allow_anonymous true\npersistence false\nuser {user}\n"
        )
        return conf


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    if shutil.which("openssl") is None:  # Debian's openssl (ca-certificates needs it)
        if os.environ.get("CI") == "true":
            pytest.fail("the openssl command is missing")
        pytest.skip("no openssl command")
    server = TlsMosquitto(tmp_path)
    server_certificate(tmp_path, authority(tmp_path, "ca"))
    with server:
        yield server


async def connects(broker: Mosquitto, ca_file: Path, within: float) -> bool:
    table = {"url": f"mqtts://127.0.0.1:{broker.port}", "ca_file": str(ca_file),
             "keepalive": 5}  # fmt: skip
    link = MqttLink(mqtt_config(table), reconnect=Backoff(0.05, 0.2), timeout=3.0)
    task = asyncio.create_task(link.run())
    try:
        return await link.wait_connected(within)
    finally:
        link.stop()
        await asyncio.wait_for(task, 10)


async def test_mqtts_with_the_brokers_ca_and_not_with_another(
    broker: Mosquitto, tmp_path: Path
) -> None:
    assert await connects(broker, tmp_path / "ca.pem", 10)
    other = tmp_path / "other"
    other.mkdir()
    stranger, _ = authority(other, "stranger")
    assert not await connects(broker, stranger, 2)  # certificate verify failed, retried
