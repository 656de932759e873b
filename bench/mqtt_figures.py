"""The MQTT figures of README "MQTT" (by hand, never part of the tests):

1. publish latency after a received command: ``ping: <n>`` delivered N times, one at a
   time, by hostsim on a pty to the real ``smscmd run`` with an ``[mqtt]`` table and a
   real Mosquitto on loopback (QoS 1); for each, when a subscriber of its own got
   ``commands/received`` and ``commands/done``, measured from the delivery and from the
   journal commit (the payload's ``received_at``); medians (and max) over N;
2. what a broker outage costs the journal: the broker stopped, M commands answered, the
   bytes the publish queue's rows take in the journal (SQLite's ``dbstat``: the pages of
   table ``publish``), per event; then how long the backlog takes to publish once the
   broker is back.

    PYTHONPATH=. python3 bench/mqtt_figures.py [N] [M]
    PYTHONPATH=. python3 bench/mqtt_figures.py without [N]

``without``: the same N pings to an agent without ``[mqtt]`` (no broker), for the reply's
latency to compare with the first run's last line.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness import running_agent
from mqtt.broker import Mosquitto, Subscriber

from device.sms.charset import Charset
from hostsim.pty import SimulatedModem
from hostsim.sim import HostSim

PREFIX = "smscmd/bench"
WAIT = 60.0


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"


async def until(condition: object, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.005)


def arrivals(sub: Subscriber, topic: str) -> dict[str, tuple[float, dict[str, object]]]:
    """argument → (arrival wall time, payload) of the events on ``topic``."""
    out = {}
    for m in sub.messages:
        if m.topic == f"{PREFIX}/{topic}":
            payload = json.loads(m.payload)
            out[str(payload["argument"])] = (m.at, payload)
    return out


def queue_bytes(journal: Path) -> tuple[int, int, int]:
    """(rows, bytes of their pages, bytes of topic + payload text) of table publish."""
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as raw:
        rows, text = raw.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(topic) + LENGTH(payload)), 0) FROM publish"
        ).fetchone()
        pages = raw.execute("SELECT SUM(pgsize) FROM dbstat WHERE name = 'publish'").fetchone()[0]
    return int(rows), int(pages or 0), int(text)


async def main(n: int, m: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="smscmd-mqtt-bench-"))
    broker = Mosquitto(tmp)
    broker.start()
    conf = tmp / "mqtt.toml"
    conf.write_text(f'[mqtt]\nurl = "{broker.url}"\ntopic_prefix = "{PREFIX}"\nqos = 1\n')
    try:
        async with HostSim() as sim:
            gw: SimulatedModem = sim.modems[0]
            args = ("--config", str(conf), "--socket", str(tmp / "agent.sock"))
            async with running_agent(tmp, gw.path, *args, stop_timeout=WAIT) as proc:
                await gw.wait_until(lambda x: x.settings.cscs is Charset.UCS2, WAIT)
                await latency(gw, broker, n)
                await outage(gw, broker, proc.journal, m)
    finally:
        broker.stop()


async def latency(gw: SimulatedModem, broker: Mosquitto, n: int) -> None:
    async with Subscriber(broker, f"{PREFIX}/commands/#") as sub:
        delivered: dict[str, float] = {}
        replied: dict[str, float] = {}
        for i in range(n):
            arg = str(i)
            before = len(gw.sent)
            delivered[arg] = time.time()
            gw.deliver("000", f"ping: {arg}")
            await gw.wait_until(lambda x, before=before: len(x.sent) > before, WAIT)
            replied[arg] = time.time()
            # 4 events per command; counted, not parsed, so that the wait costs the
            # modem's process (this one) nothing
            await until(lambda i=i: len(sub.messages) >= 2 * (i + 1))
        got = arrivals(sub, "commands/received")
        done = arrivals(sub, "commands/done")
    from datetime import datetime

    after_delivery = [got[a][0] - delivered[a] for a in delivered]
    after_commit = [
        got[a][0] - datetime.fromisoformat(str(got[a][1]["received_at"])).timestamp()
        for a in delivered
    ]
    done_after = [done[a][0] - delivered[a] for a in delivered]
    reply_after = [replied[a] - delivered[a] for a in delivered]
    print(f"latency over {n} x 'ping: <n>' (QoS 1, Mosquitto on loopback):")
    print(f"  commands/received after the delivery to the modem: {ms(after_delivery)}")
    print(f"  commands/received after the journal commit:        {ms(after_commit)}")
    print(f"  commands/done after the delivery:                  {ms(done_after)}")
    print(f"  (the reply's AT+CMGS seen by the modem after the delivery: {ms(reply_after)})")


async def outage(gw: SimulatedModem, broker: Mosquitto, journal: Path, m: int) -> None:
    rows0, pages0, _ = queue_bytes(journal)
    broker.stop()
    started = time.monotonic()
    for i in range(m):
        before = len(gw.sent)
        gw.deliver("000", f"ping: {1000 + i}")
        await gw.wait_until(lambda x, before=before: len(x.sent) > before, WAIT)
    answered = time.monotonic() - started
    await until(lambda: queue_bytes(journal)[0] >= rows0 + 4 * m)
    rows, pages, text = queue_bytes(journal)
    events = rows - rows0
    print(f"outage: {m} commands answered in {answered:.1f} s with the broker stopped; "
          f"{events} events queued")  # fmt: skip
    print(f"  publish table: {pages - pages0} bytes of pages, {(pages - pages0) / events:.0f} "
          f"bytes per event (topic + payload text {text / events:.0f} bytes)")  # fmt: skip
    broker.start()
    back = time.monotonic()
    async with Subscriber(broker, f"{PREFIX}/#"):
        await until(lambda: queue_bytes(journal)[0] == 0, timeout=120)
    drained = time.monotonic() - back
    print(f"  backlog published {drained:.1f} s after the broker's restart "
          f"(reconnect backoff included): {events / drained:.0f} events/s")  # fmt: skip


async def without(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="smscmd-mqtt-bench-"))
    async with HostSim() as sim:
        gw: SimulatedModem = sim.modems[0]
        async with running_agent(tmp, gw.path, stop_timeout=WAIT):
            await gw.wait_until(lambda x: x.settings.cscs is Charset.UCS2, WAIT)
            took = []
            for i in range(n):
                before = len(gw.sent)
                started = time.time()
                gw.deliver("000", f"ping: {i}")
                await gw.wait_until(lambda x, before=before: len(x.sent) > before, WAIT)
                took.append(time.time() - started)
    print(f"without [mqtt], {n} x 'ping: <n>': the reply's AT+CMGS seen by the modem after "
          f"the delivery: {ms(took)}")  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["without"]:
        asyncio.run(without(int(sys.argv[2]) if len(sys.argv) > 2 else 50))
    else:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50,
                         int(sys.argv[2]) if len(sys.argv) > 2 else 200))  # fmt: skip
