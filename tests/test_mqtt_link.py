"""The ``[mqtt]`` table and the broker connection (device/mqtt/config.py, link.py),
against a real Mosquitto (tests/mqtt/broker.py): birth and last will on ``…/status``,
publish and subscribe, reconnect after the broker comes back, username/password.

Sources: MQTT 3.1.1 (OASIS, 2014) §3.1.2.5 (Will Flag: the broker publishes the will
when the network connection is closed without a DISCONNECT), §3.1.2.10 (Keep Alive,
0..65535 s), §4.7 (topic filters: ``+`` one level, ``#`` the rest including the
parent, wildcards do not match ``$`` topics).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mqtt.broker import Mosquitto, Subscriber

from device.config import load_config
from device.errors import ConfigError
from device.mqtt import Incoming, MqttLink, MqttUnavailable, mqtt_config, topic_matches
from device.retry import Backoff

REPO = Path(__file__).resolve().parents[1]
FAST = Backoff(0.05, 0.2)


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto that wants username ``gw`` / password ``s3cret`` (a password file)."""
    server = Mosquitto(tmp_path, users={"gw": "s3cret"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def link_for(broker: Mosquitto, **keys: object) -> MqttLink:
    table = {"url": broker.url, "topic_prefix": "smscmd/test", "keepalive": 5, **keys}
    return MqttLink(mqtt_config(table), reconnect=FAST, timeout=3.0)


# -- the table ------------------------------------------------------------------------


def test_the_table_defaults_and_url(tmp_path: Path) -> None:
    conf = tmp_path / "smscmd.toml"
    conf.write_text('[mqtt]\nurl = "mqtts://broker.lan"\nca_file = "ca.pem"\n')
    mqtt = load_config(conf).mqtt
    assert mqtt is not None
    assert (mqtt.host, mqtt.port, mqtt.tls) == ("broker.lan", 8883, True)
    assert mqtt.ca_file == tmp_path / "ca.pem"
    assert mqtt.topic_prefix.startswith("smscmd/") and mqtt.client_id.startswith("smscmd-")
    assert (mqtt.qos, mqtt.keepalive, mqtt.queue_max) == (1, 60, 10000)
    assert mqtt_config({"url": "mqtt://h"}).port == 1883
    assert mqtt_config({"url": "mqtt://[::1]:1999"}).host == "::1"
    assert load_config(None).mqtt is None


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({}, "mqtt.url", "url is required"),
        ({"url": "http://h"}, "mqtt.url", "mqtt:// or mqtts://"),
        ({"url": "mqtt://"}, "mqtt.url", "no broker host"),
        ({"url": "mqtt://u:p@h"}, "mqtt.url", "credentials"),
        ({"url": "mqtt://h/x"}, "mqtt.url", "no path"),
        ({"url": "mqtt://h:99999"}, "mqtt.url", "not a valid URL"),
        ({"url": 1883}, "mqtt.url", "URL string"),
        ({"url": "mqtt://h", "qos": 3}, "mqtt.qos", "0, 1 or 2"),
        ({"url": "mqtt://h", "qos": True}, "mqtt.qos", "0, 1 or 2"),
        ({"url": "mqtt://h", "keepalive": 2}, "mqtt.keepalive", "5 .. 65535"),
        ({"url": "mqtt://h", "queue_max": 0}, "mqtt.queue_max", "integer 1"),
        ({"url": "mqtt://h", "password": "x"}, "mqtt.password", "needs a username"),
        ({"url": "mqtts://h", "cert_file": "c"}, "mqtt.key_file", "both"),
        ({"url": "mqtt://h", "ca_file": "c"}, "mqtt.ca_file", "mqtts://"),
        ({"url": "mqtt://h", "topic_prefix": "a/+/b"}, "mqtt.topic_prefix", "wildcard"),
        ({"url": "mqtt://h", "topic_prefix": "/a"}, "mqtt.topic_prefix", "leading"),
        ({"url": "mqtt://h", "colour": 1}, "mqtt.colour", "unknown key"),
    ],
)
def test_bad_tables_are_config_errors(table: dict[str, object], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        mqtt_config(table)
    assert caught.value.key == key and words in str(caught.value)


def test_a_bad_password_is_not_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        mqtt_config({"url": "mqtt://h", "username": "u", "password": 12345})
    assert "12345" not in str(caught.value)
    config = mqtt_config({"url": "mqtt://h", "username": "u", "password": "hunter2"})
    assert "hunter2" not in repr(config)


def test_a_table_that_is_not_a_table(tmp_path: Path) -> None:
    conf = tmp_path / "smscmd.toml"
    conf.write_text('mqtt = "mqtt://h"\n')
    with pytest.raises(ConfigError, match=r"expected a table \[mqtt\]"):
        load_config(conf)


def test_topic_filters() -> None:
    assert topic_matches("a/+/c", "a/b/c") and not topic_matches("a/+/c", "a/b/c/d")
    assert topic_matches("a/#", "a") and topic_matches("a/#", "a/b/c")
    assert not topic_matches("a/b", "a") and not topic_matches("+/x", "$SYS/x")
    assert topic_matches("+/+", "/x")  # an empty level is a level


_LEVELS = st.lists(st.text(st.characters(blacklist_characters="/+#"), max_size=4),
                   min_size=1, max_size=5)  # fmt: skip


@given(_LEVELS)
def test_a_topic_matches_itself_and_hash(levels: list[str]) -> None:
    topic = "/".join(levels)
    assert topic_matches(topic, topic)
    assert topic_matches("#", topic) or topic.startswith("$")
    assert topic_matches("/".join("+" for _ in levels), topic) or topic.startswith("$")


# -- the connection -------------------------------------------------------------------


async def test_birth_publish_and_subscribe(broker: Mosquitto) -> None:
    link = link_for(broker)
    got: list[Incoming] = []
    link.subscribe(link.topic("send"), got.append)
    with pytest.raises(MqttUnavailable, match="not connected"):
        await link.publish(link.topic("x"), b"1")
    async with Subscriber(broker, "smscmd/test/#") as sub:
        task = asyncio.create_task(link.run())
        assert await link.wait_connected(10)
        status = await sub.wait_for(1, topic="smscmd/test/status")
        assert json.loads(status[0].payload) == {"availability": "online"}
        await link.publish(link.topic("events"), {"n": 1})
        assert json.loads((await sub.wait_for(1, topic="smscmd/test/events"))[0].payload) == {
            "n": 1
        }
        await sub_publish(broker, "smscmd/test/send", b"hello")
        await until(lambda: got)
        assert got == [Incoming("smscmd/test/send", b"hello", False)]
        link.stop()
        await asyncio.wait_for(task, 10)
        status = await sub.wait_for(2, topic="smscmd/test/status")
        assert json.loads(status[1].payload) == {"availability": "offline"}
        assert status[1].retain is False  # delivered live; the retained copy is below
    assert await retained(broker, "smscmd/test/status") == {"availability": "offline"}


async def test_reconnects_and_subscribes_again(broker: Mosquitto) -> None:
    link = link_for(broker)
    got: list[Incoming] = []
    link.subscribe(link.topic("send"), got.append)
    task = asyncio.create_task(link.run())
    try:
        assert await link.wait_connected(10)
        broker.stop()
        await until(lambda: not link.connected)
        with pytest.raises(MqttUnavailable):
            await link.publish(link.topic("x"), b"1")
        broker.start()
        assert await link.wait_connected(10)
        assert link.connections == 2
        await sub_publish(broker, "smscmd/test/send", b"again")
        await until(lambda: got)
        assert got[0].payload == b"again"
    finally:
        link.stop()
        await asyncio.wait_for(task, 10)


async def test_username_and_password(auth_broker: Mosquitto) -> None:
    good = link_for(auth_broker, username="gw", password="s3cret")
    bad = link_for(auth_broker, username="gw", password="wrong", client_id="smscmd-bad")
    tasks = [asyncio.create_task(good.run()), asyncio.create_task(bad.run())]
    try:
        assert await good.wait_connected(10)
        assert not await bad.wait_connected(1.0)
        assert auth_broker.log.read_text().count("not authorised") >= 1
    finally:
        good.stop()
        bad.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)


async def test_a_silent_broker_does_not_hold_up_publish(tmp_path: Path) -> None:
    """A TCP listener that never answers CONNECT: the link waits for it in its own task;
    publish refuses at once meanwhile, and a stop does not wait for the timeout."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        link = MqttLink(mqtt_config({"url": f"mqtt://127.0.0.1:{silent.getsockname()[1]}"}),
                        reconnect=FAST, timeout=10.0)  # fmt: skip
        task = asyncio.create_task(link.run())
        await asyncio.sleep(0.1)  # let it start connecting (not a sync: any time will do)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(MqttUnavailable):
            await link.publish(link.topic("x"), b"1")
        assert loop.time() - started < 0.05
        link.stop()  # while it waits for CONNACK: abandoned at once, not after 10 s
        await asyncio.wait_for(task, 1.0)


def test_the_last_will_when_the_agent_vanishes(broker: Mosquitto) -> None:
    """SIGKILL the process that holds the link: the broker publishes ``offline``."""
    script = textwrap.dedent(f"""
        import asyncio
        from device.mqtt import MqttLink, mqtt_config
        async def main():
            link = MqttLink(mqtt_config({{"url": "{broker.url}", "topic_prefix": "smscmd/w",
                                          "keepalive": 5}}))
            task = asyncio.create_task(link.run())
            await link.wait_connected(10)
            print("connected", flush=True)
            await task
        asyncio.run(main())
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"connected\n"
        assert asyncio.run(retained(broker, "smscmd/w/status")) == {"availability": "online"}
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        async def offline() -> bool:
            return await retained(broker, "smscmd/w/status") == {"availability": "offline"}

        asyncio.run(until_async(offline))
    finally:
        proc.kill()
        proc.wait(10)


def test_no_mqtt_table_loads_none_of_it(tmp_path: Path) -> None:
    """An agent without [mqtt] imports no device.mqtt, aiomqtt or paho; with it, the
    table is read without aiomqtt (loaded by the connection task only)."""
    conf = tmp_path / "smscmd.toml"
    conf.write_text('[agent]\nport = "/dev/null"\n')
    with_table = tmp_path / "mqtt.toml"
    with_table.write_text('[agent]\nport = "/dev/null"\n[mqtt]\nurl = "mqtt://localhost"\n')
    probe = textwrap.dedent("""
        import sys
        import device.cli, device.service, device.agent
        from device.config import load_config
        load_config(sys.argv[1])
        print(sorted(m for m in sys.modules
                     if m.split(".")[0] in ("aiomqtt", "paho") or m.startswith("device.mqtt")))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def loaded(path: Path) -> str:
        command = [sys.executable, "-c", probe, str(path)]
        done = subprocess.run(command, env=env, check=True, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        return done.stdout.strip()

    assert loaded(conf) == "[]"
    assert loaded(with_table) == "['device.mqtt', 'device.mqtt.config', 'device.mqtt.link']"


# -- helpers --------------------------------------------------------------------------


async def until(condition: object, timeout: float = 10.0) -> None:
    """Wait (bounded) until ``condition()`` is true, polling every 10 ms."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, f"not true within {timeout} s"
        await asyncio.sleep(0.01)


async def until_async(condition: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():  # type: ignore[operator]
        assert loop.time() < deadline, f"not true within {timeout} s"
        await asyncio.sleep(0.05)


async def sub_publish(broker: Mosquitto, topic: str, payload: bytes) -> None:
    import aiomqtt

    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.publish(topic, payload, qos=1)


async def retained(broker: Mosquitto, topic: str) -> object:
    """The retained message on ``topic`` as JSON (None when there is none in 1 s)."""
    async with Subscriber(broker, topic) as sub:
        try:
            return json.loads((await sub.wait_for(1, timeout=1.0))[0].payload)
        except TimeoutError:
            return None
