"""The README's Mosquitto recipe (hardware/mosquitto/smscmd.conf) run as written by
Debian's mosquitto (tests/mqtt/broker.py finds it): only its port and the password
file's path are this test's; the agent's link logs in with the username and password of
its ``[mqtt]`` table, and a client without them is refused.

Source: mosquitto.conf(5) (Mosquitto 2.0: ``listener port bind-address``,
``allow_anonymous``, ``password_file``; the file is made with mosquitto_passwd(1)).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt.broker import Mosquitto

from device.mqtt import MqttLink, mqtt_config
from device.retry import Backoff

RECIPE = Path(__file__).resolve().parents[1] / "hardware/mosquitto/smscmd.conf"


class Recipe(Mosquitto):
    """The recipe's configuration, on a free port, with a password file of the test's."""

    def _write_config(self) -> Path:
        passwd = self.directory / "passwd"
        passwd.touch(mode=0o600)
        for user, password in (self.users or {}).items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password],
                           check=True, capture_output=True, timeout=10)  # fmt: skip
        text = RECIPE.read_text()
        text = re.sub(r"^listener 1883 127\.0\.0\.1$", f"listener {self.port} 127.0.0.1", text,
                      flags=re.M)  # fmt: skip
        text = text.replace("/etc/mosquitto/passwd", str(passwd))
        # As root mosquitto would become the user "mosquitto", who cannot read tmp_path.
        text += f"user {pwd.getpwuid(os.getuid()).pw_name}\npersistence false\n"
        conf = self.directory / "mosquitto.conf"
        conf.write_text(text)
        return conf


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Recipe(tmp_path, users={"smscmd": "gw-secret"})
    assert f"listener {server.port} 127.0.0.1" in server.conf.read_text()
    with server:
        yield server


async def test_the_agent_logs_in_and_anonymous_is_refused(broker: Mosquitto) -> None:
    import aiomqtt

    table = {"url": broker.url, "username": "smscmd", "password": "gw-secret", "keepalive": 5}
    link = MqttLink(mqtt_config(table), reconnect=Backoff(0.05, 0.2), timeout=3.0)
    task = asyncio.create_task(link.run())
    try:
        assert await link.wait_connected(10)
    finally:
        link.stop()
        await asyncio.wait_for(task, 10)
    with pytest.raises(aiomqtt.MqttError, match=r"(?i)not authori[sz]ed"):
        async with aiomqtt.Client("127.0.0.1", broker.port, timeout=3):
            pass
    with pytest.raises(aiomqtt.MqttError, match=r"(?i)bad user name or password|not authori"):
        async with aiomqtt.Client("127.0.0.1", broker.port, username="smscmd",
                                  password="wrong", timeout=3):  # fmt: skip
            pass
