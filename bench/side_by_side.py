"""smscmd side by side with python-gsmmodem-new and gammu-smsd, on one hostsim persona.

    python3 bench/side_by_side.py [--quick] [--runs 2] [--baud 115200] [--messages 50]
                                  [--burst 100] [--idle 5] [--only NAME …] [--no-write]

Each receiver runs on a ``hostsim run`` of its own (tests/harness.py
``running_hostsim``, persona ``quectel-bg96``, its fleet webhook on a
``harness.Listener``, commands delivered through the API as tests/clients/support.py
``Cloud`` does), with ``--byte-log`` and, for the paced runs, ``--baud``. The workload:
``--messages`` sequential commands ``ping`` with random gaps (each one waits for its
reply), a burst of ``--burst`` delivered at once (answered within 60 s, the wait ending
early after 5 s without a reply), then ``--idle`` seconds with nothing.

Figures per receiver, from hostsim's byte log and /proc:

* reaction: from the first byte of the ``+CMTI`` (``+CMT``) on the wire (its arrival
  less one byte time) to the ``\\r`` that ends the reply's ``AT+CMGS=`` line reaching the
  module; for a receiver that asks for no indications (gammu-smsd polls), from the
  moment the bench saw the command ``delivered`` (the message stored in the modem);
* bytes: all bytes that crossed the line (both ways) in that interval; wire: the time in
  it during which the line was busy one way or the other (10 / baud per byte, the two
  directions overlapping, as a command and its echo do); p50 / wire at the paced rate;
* RSS: the median of VmRSS (/proc/PID/status) sampled every 0.25 s over the run;
* CPU per message: utime+stime (+ waited-for children) of the receiver from the first
  delivery to the end of the burst, over the messages it answered;
* start-to-ready: from spawning the receiver to the last byte of its start-up traffic
  (the line then quiet for 0.5 s);
* fsyncs per message: ``strace -f --seccomp-bpf -c -e trace=fsync,fdatasync`` around
  the receiver (start-up included), over the messages answered.

gammu-smsd polls (1 s) and mostly sleeps, so its runs go alongside the others' (each on
its own hostsim) to keep the whole invocation under ten minutes; it runs unpaced only.
The section of BENCHMARKS.md between the side-by-side markers is replaced (the rest is
``bench/run.py``'s). Never part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from clients.support import Cloud, clients_venv, gammu_config  # noqa: E402
from harness import Listener, running_hostsim  # noqa: E402
from test_clients_gammu_smsd import smsd_section  # noqa: E402

from hostsim.wire import Direction, WireChunk, byte_time, read_log  # noqa: E402

PERSONA = "quectel-bg96"
BEGIN = "<!-- side-by-side: begin (written by bench/side_by_side.py) -->"
END = "<!-- side-by-side: end -->"
BENCHMARKS = REPO / "BENCHMARKS.md"
#: The burst's bound, and how long without a reply ends its wait sooner.
BURST_WINDOW = 60.0
BURST_QUIET = 5.0
REPLY_WAIT = 20.0
QUIET_READY = 0.5
SAMPLE = 0.25
_TICK = os.sysconf("SC_CLK_TCK")
_URC = re.compile(rb"\+CMTI?:")
_CMGS = re.compile(rb"AT\+CMGS=[^\r]*\r")


@dataclass(frozen=True, slots=True)
class Receiver:
    """One peer under test: ``kind`` is smscmd, gsmmodem or smsd."""

    name: str
    kind: str
    mode: str


RECEIVERS = (
    Receiver("smscmd, text mode", "smscmd", "text"),
    Receiver("smscmd, PDU mode", "smscmd", "pdu"),
    Receiver("python-gsmmodem-new, PDU", "gsmmodem", "pdu"),
    Receiver("python-gsmmodem-new, text", "gsmmodem", "text"),
    Receiver("gammu-smsd, polling every 1 s", "smsd", "pdu"),
)


@dataclass
class Run:
    """What one run of one receiver at one baud measured (``error`` when it could not)."""

    receiver: Receiver
    baud: int | None
    reactions: list[float] = field(default_factory=list)
    wire_bytes: list[int] = field(default_factory=list)
    wire_time: list[float] = field(default_factory=list)
    answered: int = 0
    burst_answered: int = 0
    burst_seconds: float | None = None
    rss: list[int] = field(default_factory=list)
    cpu_per_message: float | None = None
    idle_cpu: float | None = None
    ready: float | None = None
    fsyncs: int | None = None
    error: str | None = None


# --------------------------------------------------------------------- the receivers


def smsd_extra(tmp: Path, log: Path) -> str:
    """gammu-smsd's [smsd] section (tests/test_clients_gammu_smsd.py's files backend),
    polling every second, with a RunOnReceive that puts "pong" for 000 in the outbox."""
    script = tmp / "on-receive"
    outbox = tmp / "outbox"
    script.write_text(
        "#!/bin/sh\n"
        f'tmp="{outbox}/.reply.$$"\nprintf pong > "$tmp"\n'
        f'mv "$tmp" "{outbox}/OUTA$(date +%Y%m%d_%H%M%S)_00_000_$$.txt"\n'
    )
    script.chmod(0o755)
    section: str = smsd_section(tmp, log).replace("debuglevel = 255", "debuglevel = 1")
    return section + (
        "receivefrequency = 1\nstatusfrequency = 0\ncheckbattery = 0\ncheckSignal = 0\n"
        f"checksecurity = 0\nrunonreceive = {script}\n"
    )


def argv_for(receiver: Receiver, port: str, tmp: Path) -> list[str]:
    if receiver.kind == "smscmd":
        return [
            sys.executable, "-m", "device.cli", "run", "--port", port,
            "--journal", str(tmp / "journal.sqlite3"), "--socket", str(tmp / "agent.sock"),
            "--mode", receiver.mode, "--log-level", "WARNING",
        ]  # fmt: skip
    if receiver.kind == "gsmmodem":
        python = clients_venv() / "bin" / "python"
        return [str(python), str(REPO / "bench" / "gsmmodem_replier.py"), port, receiver.mode]
    config = gammu_config(tmp / "smsdrc", port, None, smsd_extra(tmp, tmp / "smsd.log"))
    return ["gammu-smsd", "-c", str(config)]


def unavailable(receiver: Receiver) -> str | None:
    """Why ``receiver`` cannot run here, or None."""
    if receiver.kind == "gsmmodem":
        python = clients_venv() / "bin" / "python"
        if not python.exists() or not list(
            clients_venv().glob("lib/python*/site-packages/gsmmodem")
        ):
            return f"python-gsmmodem-new is not in {clients_venv()} (bash tests/clients/install)"
    if receiver.kind == "smsd" and shutil.which("gammu-smsd") is None:
        return "gammu-smsd is not installed (bash tests/clients/install)"
    return None


def versions() -> dict[str, str]:
    def out(argv: Sequence[str]) -> str:
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""

    commit = out(["git", "-C", str(REPO), "log", "-1", "--format=%h (%cs)"]).strip()
    gsm = out([
        str(clients_venv() / "bin" / "python"), "-c",
        "import importlib.metadata as m; print(m.version('python-gsmmodem-new'))",
    ]).strip()  # fmt: skip
    smsd = re.search(r"version (\S+)", out(["gammu-smsd", "-v"]))
    return {
        "smscmd": commit,
        "python-gsmmodem-new": gsm or "?",
        "gammu-smsd": smsd.group(1) if smsd else "?",
        "python": sys.version.split()[0],
    }


# ------------------------------------------------------------------------- /proc


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def cpu_ticks(pid: int) -> int | None:
    """utime + stime + cutime + cstime of ``pid``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(v) for v in fields[11:15])


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# ----------------------------------------------------------------------- analysis


def stream(chunks: list[WireChunk], direction: Direction, bt: float) -> tuple[bytes, list[float]]:
    """The bytes one way and the arrival time of each."""
    data = bytearray()
    times: list[float] = []
    for chunk in chunks:
        if chunk.direction is not direction:
            continue
        n = len(chunk.data)
        data += chunk.data
        times.extend(chunk.t - (n - 1 - k) * bt for k in range(n))
    return bytes(data), times


def between(times: list[float], start: float, end: float) -> int:
    """How many of the (ascending) ``times`` are in ``(start, end]``."""
    return bisect.bisect_right(times, end) - bisect.bisect_right(times, start)


def busy(out_t: list[float], in_t: list[float], start: float, end: float, bt: float) -> float:
    """Seconds in ``(start, end]`` during which at least one direction was sending: each
    byte occupies its direction for ``bt`` before its arrival, and the two directions
    overlap (full duplex: the module echoes a command while it arrives)."""
    spans = sorted(
        (t - bt, t)
        for times in (out_t, in_t)
        for t in times[bisect.bisect_right(times, start) : bisect.bisect_right(times, end)]
    )
    total = 0.0
    edge = start
    for begin, finish in spans:
        if finish > max(begin, edge):
            total += finish - max(begin, edge)
            edge = finish
    return total


def reactions(
    chunks: list[WireChunk], bt: float, window: tuple[float, float], delivered: list[float]
) -> tuple[list[float], list[int], list[float]]:
    """Reaction times, bytes on the wire and the wire's busy time (:func:`busy`) for each
    message of the sequential phase (see the module doc)."""
    out, out_t = stream(chunks, Direction.TO_TE, bt)
    into, in_t = stream(chunks, Direction.TO_MODULE, bt)
    # Less a nanosecond: unpaced, the whole +CMTI chunk has the time of its first byte.
    starts = [
        out_t[m.start()] - bt - 1e-9
        for m in _URC.finditer(out)
        if window[0] <= out_t[m.start()] <= window[1]
    ]
    if not starts:
        starts = delivered
    ends = [in_t[m.end() - 1] for m in _CMGS.finditer(into)]
    result: list[float] = []
    counts: list[int] = []
    wire: list[float] = []
    for i, start in enumerate(starts):
        nxt = starts[i + 1] if i + 1 < len(starts) else window[1] + REPLY_WAIT
        end = next((e for e in ends if start < e <= nxt), None)
        if end is None:
            continue
        result.append(end - start)
        counts.append(between(out_t, start, end) + between(in_t, start, end))
        wire.append(busy(out_t, in_t, start, end, bt))
    return result, counts, wire


# --------------------------------------------------------------------------- a run


@contextlib.asynccontextmanager
async def fleet(tmp: Path, log: Path, baud: int) -> AsyncIterator[Cloud]:
    """hostsim (the bench's persona and seed, its byte log at ``log``, paced at ``baud``;
    0: unpaced) with the fleet webhook's listener, as one :class:`Cloud`."""
    extra = ["--baud", str(baud)] if baud else []
    async with (
        Listener().serving() as hooks,
        running_hostsim(
            tmp, "--seed", "11", "--persona", PERSONA, "--log-level", "WARNING",
            "--commands-webhook", hooks.url + "/fleet", "--byte-log", str(log), *extra,
        ) as ready,
    ):  # fmt: skip
        yield Cloud(ready, hooks)


@contextlib.asynccontextmanager
async def receiver_process(
    receiver: Receiver, port: str, tmp: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, float]]:
    """The receiver (under strace when it is there); yields it and its spawn time."""
    argv = argv_for(receiver, port, tmp)
    if shutil.which("strace"):
        argv = ["strace", "-f", "--seccomp-bpf", "-c", "-e", "trace=fsync,fdatasync",
                "-o", str(tmp / "strace.txt"), *argv]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO))
    spawned = time.monotonic()
    with (tmp / "receiver.log").open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=err, stderr=err, env=env
        )
    try:
        yield proc, spawned
    finally:
        if proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            target = children(proc.pid) if argv[0] == "strace" else [proc.pid]
            for pid in target:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 15)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def traced_pid(proc: asyncio.subprocess.Process) -> int:
    kids = children(proc.pid)
    return kids[0] if kids else proc.pid


async def wait_ready(log: Path, spawned: float, limit: float) -> float:
    """Seconds from spawn to the end of the start-up traffic (then quiet)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        chunks = await asyncio.to_thread(read_log, log) if log.exists() else []  # noqa: ASYNC240
        mine = [c for c in chunks if c.direction is Direction.TO_MODULE]
        if mine and time.monotonic() - chunks[-1].t >= QUIET_READY:
            return chunks[-1].t - spawned
    raise TimeoutError("the receiver's start-up did not end")


def drain(queue: asyncio.Queue[dict[str, str]]) -> None:
    while not queue.empty():
        queue.get_nowait()


async def one_run(receiver: Receiver, baud: int | None, args: argparse.Namespace) -> Run:
    run = Run(receiver, baud)
    bt = byte_time(baud) if baud else 0.0
    rng = random.Random(f"{receiver.name}:{baud}")
    with tempfile.TemporaryDirectory(prefix="side-by-side-") as name:
        tmp = Path(name)
        log = tmp / "bytes.jsonl"
        async with fleet(tmp, log, baud) as cloud:
            async with receiver_process(receiver, cloud.link, tmp) as (proc, spawned):
                sampling = asyncio.create_task(sample(proc, run))
                try:
                    run.ready = await wait_ready(log, spawned, 60)
                    pid = traced_pid(proc) if shutil.which("strace") else proc.pid
                    await workload(cloud, run, args, rng=rng, pid=pid, log=log, bt=bt)
                finally:
                    sampling.cancel()
            run.fsyncs = fsync_count(tmp / "strace.txt")
    return run


async def sample(proc: asyncio.subprocess.Process, run: Run) -> None:
    """VmRSS of the receiver (strace's child when traced) every :data:`SAMPLE` s."""
    while True:
        pid = traced_pid(proc) if shutil.which("strace") else proc.pid
        traced = shutil.which("strace") is not None
        value = rss_kib(pid) if pid != proc.pid or not traced else None
        if value is not None:
            run.rss.append(value)
        await asyncio.sleep(SAMPLE)


async def workload(
    cloud: Cloud, run: Run, args: argparse.Namespace, *, rng: random.Random, pid: int,
    log: Path, bt: float,
) -> None:  # fmt: skip
    cpu0 = cpu_ticks(pid)
    delivered: list[float] = []
    start = time.monotonic()
    for _ in range(args.messages):
        await cloud.deliver("ping")
        delivered.append(time.monotonic())
        try:
            await asyncio.wait_for(cloud.hooks.fleet.get(), REPLY_WAIT)
            run.answered += 1
        except TimeoutError:
            pass
        await asyncio.sleep(rng.uniform(0.02, 0.2))
    window = (start, time.monotonic())
    await asyncio.sleep(0.5)
    drain(cloud.hooks.fleet)
    t0 = time.monotonic()
    with contextlib.suppress(TimeoutError):  # a receiver that leaves storage full
        await cloud.deliver(*["ping"] * args.burst)
    last = t0
    while run.burst_answered < args.burst:
        left = min(t0 + BURST_WINDOW, last + BURST_QUIET) - time.monotonic()
        if left <= 0:
            break
        try:
            await asyncio.wait_for(cloud.hooks.fleet.get(), left)
        except TimeoutError:
            break
        last = time.monotonic()
        run.burst_answered += 1
    run.burst_seconds = last - t0 if run.burst_answered else None
    cpu1 = cpu_ticks(pid)
    await asyncio.sleep(args.idle)
    cpu2 = cpu_ticks(pid)
    done = run.answered + run.burst_answered
    if cpu0 is not None and cpu1 is not None and done:
        run.cpu_per_message = (cpu1 - cpu0) / _TICK / done
    if cpu1 is not None and cpu2 is not None and args.idle:
        run.idle_cpu = (cpu2 - cpu1) / _TICK / args.idle
    run.reactions, run.wire_bytes, run.wire_time = reactions(read_log(log), bt, window, delivered)


def fsync_count(path: Path) -> int | None:
    """Calls of fsync and fdatasync in an ``strace -c`` summary (None without one)."""
    if not path.exists():
        return None
    total = 0
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and parts[-1] in ("fsync", "fdatasync"):
            total += int(parts[3] if len(parts) >= 6 else parts[-2])
    return total


# ------------------------------------------------------------------------- report


def med(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def spread(values: Sequence[float], fmt: str) -> str:
    """``median (min–max)`` over the runs; – when none."""
    if not values:
        return "–"
    m = format(statistics.median(values), fmt)
    if len(values) == 1:
        return m
    return f"{m} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def row(name: str, runs: list[Run], baud: int | None) -> str:
    ok = [r for r in runs if r.error is None]
    if not ok:
        why = runs[0].error if runs else "not run"
        return f"| {name} | {'unpaced' if baud is None else baud} | {why} |" + " |" * 8
    p50 = [1000 * m for r in ok if (m := med(r.reactions)) is not None]
    nbytes = [float(m) for r in ok if (m := med(r.wire_bytes)) is not None]
    ratio = [
        statistics.median(r.reactions) / statistics.median(r.wire_time)
        for r in ok if baud and r.reactions and r.wire_time and statistics.median(r.wire_time)
    ]  # fmt: skip
    burst = ", ".join(
        f"{r.burst_answered} in {r.burst_seconds:.2f} s"
        if r.burst_seconds
        else f"{r.burst_answered}"
        for r in ok
    )
    rss = [m / 1024 for r in ok if (m := med(r.rss)) is not None]
    cpu = [1000 * r.cpu_per_message for r in ok if r.cpu_per_message is not None]
    ready = [r.ready for r in ok if r.ready is not None]
    fsync = [
        r.fsyncs / (r.answered + r.burst_answered)
        for r in ok
        if r.fsyncs is not None and r.answered + r.burst_answered
    ]
    answered = "/".join(str(r.answered) for r in ok)
    return (
        f"| {name} | {'unpaced' if baud is None else baud} | {spread(p50, '.1f')} ms "
        f"| {answered} | {burst} "
        f"| {spread(nbytes, '.0f')} | {spread(ratio, '.2f')} | {spread(rss, '.1f')} MiB "
        f"| {spread(cpu, '.1f')} ms | {spread(ready, '.2f')} s | {spread(fsync, '.2f')} |"
    )


def section(results: dict[tuple[str, int | None], list[Run]], args: argparse.Namespace,
            info: dict[str, str], elapsed: float, missing: dict[str, str]) -> str:  # fmt: skip
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        "## Side by side: smscmd, python-gsmmodem-new and gammu-smsd on one hostsim",
        "",
        f"Written by `{' '.join(['python3', 'bench/side_by_side.py', *sys.argv[1:]])}` on {now}, "
        f"{elapsed:.0f} s in all; smscmd at `{info['smscmd']}`, python-gsmmodem-new "
        f"{info['python-gsmmodem-new']}, gammu-smsd {info['gammu-smsd']}, Python {info['python']}. "
        f"Persona `{PERSONA}`; {args.runs} run(s) of each, median (min–max over the runs). "
        "Shared noisy machine (several sessions on two cores): compare within a run.",
        "",
        f"Workload per run: {args.messages} sequential `ping` commands with random gaps of "
        f"20–200 ms, each waiting for its `pong`; a burst of {args.burst} delivered at once "
        f"(answered within {BURST_WINDOW:.0f} s; the wait ends after {BURST_QUIET:.0f} s "
        f"without a reply); {args.idle} s idle. Method: see `bench/side_by_side.py`'s docstring "
        "(reaction = first byte of `+CMTI` on the wire to the end of the reply's `AT+CMGS=` "
        "line at the module, from hostsim's `--byte-log`; bytes = both directions in between; "
        "wire = the time in between that the line was busy either way, 10 bits a byte, a "
        "command's echo overlapping the command).",
        "",
        "| receiver | baud | reaction p50 | sequential answered | burst answered "
        "| bytes +CMTI → AT+CMGS | p50 / wire | RSS | CPU per message | start to ready "
        "| fsyncs per message |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, baud), runs in results.items():
        lines.append(row(name, runs, baud))
    lines += ["", "Idle CPU over the idle window: " + "; ".join(
        f"{name} ({'unpaced' if baud is None else baud}): "
        + spread([100 * r.idle_cpu for r in runs if r.idle_cpu is not None], ".2f") + " %"
        for (name, baud), runs in results.items()
    ) + "."]  # fmt: skip
    lines += [
        "",
        "Notes: gammu-smsd asks for no new-message indications (it polls storage every "
        "second), so its reaction starts when the bench saw the command `delivered`; it runs "
        "unpaced only, alongside the other receivers (it mostly sleeps). CPU includes "
        "waited-for children (gammu-smsd's RunOnReceive script). fsyncs per message include "
        "the receiver's start-up, from `strace -f -c`; python-gsmmodem keeps nothing on disk. "
        "The burst: what the persona's storage cannot take, hostsim's network holds and "
        "offers again (first after 1 s, then doubling), one message at a time; python-gsmmodem "
        "handles only the first `+CMTI` of the lines it reads in one go, so what it answers "
        "are mostly those single retries, and the rest stays unread with no error."
        " gammu-smsd with its default settings is not run: it then reads the modem every 30 s "
        "or so (issue 14 measured a 29 s reaction), so the 50 sequential messages alone would "
        "take about 25 minutes.",
    ]
    for name, why in missing.items():
        lines.append(f"- {name}: not run: {why}.")
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    current = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        updated = head + text + ("\n" + tail if tail else "")
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    BENCHMARKS.write_text(updated)


# --------------------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="1 run, 10 messages, burst 20, 1 s idle"
    )
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--baud", type=int, default=115200, help="the paced rate (0: unpaced only)")
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--only", action="append", choices=["smscmd", "gsmmodem", "smsd"])
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.messages, args.burst, args.idle = 1, 10, 20, 1.0
    return args


async def series(plan: list[tuple[Receiver, int | None]], args: argparse.Namespace,
                 results: dict[tuple[str, int | None], list[Run]]) -> None:  # fmt: skip
    for receiver, baud in plan:
        for _ in range(args.runs):
            try:
                run = await one_run(receiver, baud, args)
            except Exception as exc:  # a peer that fails is reported, not fatal
                run = Run(receiver, baud, error=f"{type(exc).__name__}: {exc}"[:200])
            results[(receiver.name, baud)].append(run)
            print(f"{receiver.name} @ {baud or 'unpaced'}: {row(receiver.name, [run], baud)}",
                  file=sys.stderr, flush=True)  # fmt: skip


async def main_async(args: argparse.Namespace) -> str:
    began = time.monotonic()
    missing: dict[str, str] = {}
    chosen = [r for r in RECEIVERS if not args.only or r.kind in args.only]
    bauds: list[int | None] = [None] + ([args.baud] if args.baud else [])
    results: dict[tuple[str, int | None], list[Run]] = {}
    main_plan: list[tuple[Receiver, int | None]] = []
    smsd_plan: list[tuple[Receiver, int | None]] = []
    for receiver in chosen:
        if (why := unavailable(receiver)) is not None:
            missing[receiver.name] = why
            continue
        for baud in bauds if receiver.kind != "smsd" else [None]:
            results[(receiver.name, baud)] = []
            (smsd_plan if receiver.kind == "smsd" else main_plan).append((receiver, baud))
    await asyncio.gather(series(main_plan, args, results), series(smsd_plan, args, results))
    return section(results, args, versions(), time.monotonic() - began, missing)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    text = asyncio.run(main_async(args))
    if args.no_write:
        sys.stdout.write(text)
    else:
        write_section(text)
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
