"""Benchmarks for smscmd; figures go to BENCHMARKS.md. Never part of the tests.

Run: ``python3 bench/run.py`` (about a minute). Each figure is the median of
several repetitions; the machine is noisy, so compare medians and ratios.

* AT codec throughput: a realistic transcript (listings, indications, errors,
  prompts) fed whole, in 64-byte chunks and byte by byte; and one ``feed()``
  of many short lines per line ending (linear for bare CR / LF too).
* GSM 03.38: encode/decode of a full 160-septet message.
* Round trip: hostsim delivers ``ping: <n>`` on a real pty, the real agent
  (in-process) reads, journals (SQLite, synchronous=FULL), deletes, replies;
  the latency from delivery to the reply reaching hostsim, over many messages.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from device.agent import Agent, AgentObserver  # noqa: E402
from device.at.codec import AtCodec  # noqa: E402
from device.commands import default_registry  # noqa: E402
from device.config import Config  # noqa: E402
from device.journal import Journal  # noqa: E402
from device.modem import ModemState  # noqa: E402
from device.sms import gsm7  # noqa: E402
from hostsim.sim import HostSim  # noqa: E402

REPEATS = 7

TRANSCRIPT = (
    b'\r\n+CMGL: 0,"REC UNREAD","003000300030",,"26/11/25,10:00:00+04",129,16\r\n'
    + b"0070" * 40
    + b'\r\n+CMTI: "SM",1\r\n'
    + b'\r\n+CMGL: 1,"REC READ","003000300030",,"26/11/25,10:00:01+04",129,4\r\n'
    + b"00700069006E0067"
    + b"\r\n\r\nOK\r\n\r\n+CSQ: 20,99\r\n\r\nOK\r\n\r\n+CMS ERROR: 321\r\n"
    + b"\r\n> \r\n+CMGS: 7\r\n\r\nOK\r\n\r\nRDY\r\n\r\n+QIND: SMS DONE\r\n"
)


def median_of(fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(REPEATS))


def codec_rate(chunk: int | None, copies: int) -> tuple[float, int]:
    """Bytes per second and events per pass."""
    stream = TRANSCRIPT * copies
    pieces = (
        [stream] if chunk is None else [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    )
    events = 0

    def once() -> float:
        nonlocal events
        codec = AtCodec()
        codec.begin('AT+CMGL="ALL"')
        start = time.perf_counter()
        n = 0
        for piece in pieces:
            n += len(codec.feed(piece))
        elapsed = time.perf_counter() - start
        events = n
        return len(stream) / elapsed

    return median_of(once), events


def line_end_rate(end: bytes, count: int) -> float:
    """Bytes per second for ``count`` short lines ending in ``end``, fed in one call:
    flat in ``count`` when framing is linear (it was quadratic for bare CR / LF)."""
    stream = (b'+CMTI: "SM",1' + end) * count

    def once() -> float:
        codec = AtCodec()
        start = time.perf_counter()
        codec.feed(stream)
        return len(stream) / (time.perf_counter() - start)

    return median_of(once)


def gsm_rate() -> tuple[float, float]:
    text = (gsm7.REPERTOIRE + "x" * 20)[:140]
    loops = 2000

    def enc() -> float:
        start = time.perf_counter()
        for _ in range(loops):
            gsm7.encode(text)
        return loops / (time.perf_counter() - start)

    raw = gsm7.encode(text)

    def dec() -> float:
        start = time.perf_counter()
        for _ in range(loops):
            gsm7.decode(raw)
        return loops / (time.perf_counter() - start)

    return median_of(enc), median_of(dec)


class _Ready(AgentObserver):
    def __init__(self) -> None:
        self.ready = asyncio.Event()

    def state_changed(self, before: ModemState, after: ModemState) -> None:
        if after is ModemState.READY:
            self.ready.set()


async def round_trips(count: int) -> tuple[list[float], float]:
    """Per-message latency (s) and the wall time of a back-to-back burst."""
    with tempfile.TemporaryDirectory() as tmp:
        async with HostSim() as sim:
            gw = sim.modems[0]
            config = Config(port=gw.path, journal=Path(tmp) / "j.sqlite3")
            with Journal.open(config.journal) as journal:
                observer = _Ready()
                agent = Agent(config, journal, default_registry(), observer=observer)
                task = asyncio.create_task(agent.run())
                await asyncio.wait_for(observer.ready.wait(), 10)
                latencies = []
                for n in range(count):
                    start = time.perf_counter()
                    gw.deliver("000", f"ping: {n}", timestamp=datetime.now(UTC))
                    await gw.wait_until(lambda m, k=n + 1: len(m.sent) >= k, 10)
                    latencies.append(time.perf_counter() - start)
                burst = 25
                base = len(gw.sent)
                start = time.perf_counter()
                for n in range(burst):
                    gw.deliver("000", f"ping: burst {n}")
                await gw.wait_until(lambda m: len(m.sent) >= base + burst, 30)
                wall = time.perf_counter() - start
                agent.stop()
                await asyncio.wait_for(task, 10)
    return latencies, wall


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def idle_cpu(seconds: float) -> tuple[float, float]:
    """CPU seconds used by an idle ``smscmd run`` (default timers) over ``seconds``,
    and its resident memory in MiB."""
    with tempfile.TemporaryDirectory() as tmp:
        async with HostSim() as sim:
            gw = sim.modems[0]
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "device.cli", "run", "--port", gw.path,
                "--journal", f"{tmp}/j.sqlite3", "--socket", f"{tmp}/c.sock",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                await gw.wait_until(lambda m: m.settings.cnmi.mt == 1, 20)
                gw.deliver("000", "ping")
                await gw.wait_until(lambda m: len(m.sent) == 1, 20)
                start = _cpu_seconds(proc.pid)
                await asyncio.sleep(seconds)  # the measurement window
                used = _cpu_seconds(proc.pid) - start
                rss_kib = _rss_kib(proc.pid)
            finally:
                proc.terminate()
                await proc.wait()
    return used, rss_kib / 1024


def main() -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python3 bench/run.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()}, {platform.machine()}, "
        f"{platform.processor() or 'cpu'}; medians of {REPEATS} runs. Noisy shared machine: "
        "compare ratios, not absolute numbers.",
        "",
        "## AT codec (`device/at/codec.py`)",
        "",
        "| feeding | MB/s | events per pass |",
        "| --- | ---: | ---: |",
    ]
    _, events = codec_rate(None, 200)
    for label, chunk in (("whole stream", None), ("64-byte chunks", 64), ("byte by byte", 1)):
        rate, ev = codec_rate(chunk, 200 if chunk != 1 else 20)
        lines.append(f"| {label} | {rate / 1e6:.2f} | {ev} |")
    lines.append("")
    lines.append(f"Transcript: {len(TRANSCRIPT)} bytes, {events // 200} events per copy.")
    lines += [
        "",
        'One `feed()` of many short lines (`+CMTI: "SM",1`), by line ending (MB/s; flat in',
        "the line count means linear):",
        "",
        "| line ending | 10 000 lines | 100 000 lines |",
        "| --- | ---: | ---: |",
    ]
    for label, end in (("CR LF", b"\r\n"), ("bare LF", b"\n"), ("bare CR", b"\r")):
        small, large = line_end_rate(end, 10_000), line_end_rate(end, 100_000)
        lines.append(f"| {label} | {small / 1e6:.2f} | {large / 1e6:.2f} |")
    enc, dec = gsm_rate()
    lines += [
        "",
        "## GSM 03.38 (`device/sms/gsm7.py`), 140-character message",
        "",
        f"- encode: {enc:,.0f} messages/s",
        f"- decode: {dec:,.0f} messages/s",
    ]
    latencies, wall = asyncio.run(round_trips(100))
    ms = [x * 1000 for x in latencies]
    q = statistics.quantiles(ms, n=20)
    lines += [
        "",
        "## Round trip through a real pty (hostsim → agent → journal → reply)",
        "",
        "Agent in-process with hostsim; journal on disk with `synchronous=FULL`.",
        "",
        f"- {len(ms)} sequential messages: median {statistics.median(ms):.2f} ms, "
        f"p95 {q[18]:.2f} ms, max {max(ms):.2f} ms",
        f"- burst of 25 back to back: {wall * 1000:.0f} ms in all, "
        f"{25 / wall:.0f} commands/s, none lost",
        "",
    ]
    idle_window = 30.0
    used, rss = asyncio.run(idle_cpu(idle_window))
    lines += [
        "## The idle agent",
        "",
        f"`smscmd run` against hostsim, default timers, after one command, idle for "
        f"{idle_window:.0f} s: "
        + (
            f"{used * 1000:.0f} ms of CPU ({used / idle_window * 100:.3f} % of one core)"
            if used > 0
            else f"no CPU tick counted (under {1000 / os.sysconf('SC_CLK_TCK'):.0f} ms)"
        )
        + f"; resident memory {rss:.1f} MiB.",
        "",
    ]
    from bench_pdu import markdown as pdu_markdown

    lines.append(pdu_markdown())
    text = "\n".join(lines)
    (ROOT / "BENCHMARKS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
