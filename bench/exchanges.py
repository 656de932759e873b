"""One message's exchanges from ``+CMTI`` to the reply's ``AT+CMGS``, and (optionally)
a py-spy profile of the agent meanwhile.

    python3 bench/exchanges.py [--mode text|pdu] [--baud 115200] [--messages 20]
                               [--burst 0] [--py-spy PATH --profile OUT.txt] [--log-level L]

Runs ``smscmd run`` (or, with ``--receiver gsmmodem``, python-gsmmodem-new as
``bench/side_by_side.py`` runs it) on a ``hostsim run --byte-log`` (persona ``quectel-bg96``, the
set-up of ``bench/side_by_side.py``, without strace), delivers ``--messages`` ``ping``
commands one at a time (random gaps of 20–200 ms), then a burst of ``--burst``, and
prints, for the sequential messages, each transfer between the first byte of ``+CMTI``
and the ``\\r`` of ``AT+CMGS=…``: its direction, its bytes, its wire time, and the gap
before it, which is the thinking time of the side that then speaks (the agent before
a transfer to the module, hostsim before one to the agent). The transfers are the
same for every message; each row gives the median (min–max) over the messages.

A transfer is the bytes one way with no gap of more than two byte times (unpaced, no
gap at all) between them; a command and its echo overlap, so an echo is its own
transfer that starts before the command ends (a negative gap).

With ``--py-spy``, ``py-spy record --pid … --format raw -r 1000`` samples the agent
from the end of its start-up to the end of the workload (root: py-spy needs ptrace;
``--spy-option=--nonblocking`` keeps it from pausing the agent at each sample), and
``--profile`` gets the top of that profile: the share of samples of each function on
the stack (inclusive) and at the top (self), line numbers merged. Never part
of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests")]

from side_by_side import (  # noqa: E402
    _CMGS,
    _URC,
    REPLY_WAIT,
    Receiver,
    argv_for,
    fleet,
    stream,
    wait_ready,
)

from hostsim.wire import Direction, WireChunk, byte_time, read_log  # noqa: E402


@dataclass(frozen=True, slots=True)
class Transfer:
    """Bytes one way: first byte on the wire at ``start``, last one in at ``end``;
    ``late`` is the time inside it that the line stood idle (hostsim's pacer late)."""

    direction: Direction
    data: bytes
    start: float
    end: float
    late: float


#: The agent writes a command line (or an SMS body) at once, and hostsim a response's
#: lines: a gap inside one is the pacer's, and only a gap after one of these can be a
#: side's thinking.
_WRITE_ENDS = {Direction.TO_MODULE: b"\r\x1a\x1b", Direction.TO_TE: b"\n"}


def transfers(chunks: list[WireChunk], bt: float, start: float, end: float) -> list[Transfer]:
    """The transfers of ``(start, end]``, in order of their first byte."""
    found: list[Transfer] = []
    for direction in Direction:
        data, times = stream(chunks, direction, bt)
        current = bytearray()
        first = last = late = 0.0
        for byte, t in zip(data, times, strict=True):
            if not start < t <= end:
                continue
            gap = t - last - bt
            if current and gap > bt + 1e-6:
                if current[-1] in _WRITE_ENDS[direction]:
                    found.append(Transfer(direction, bytes(current), first - bt, last, late))
                    current = bytearray()
                else:
                    late += gap
            if not current:
                first, late = t, 0.0
            current.append(byte)
            last = t
        if current:
            found.append(Transfer(direction, bytes(current), first - bt, last, late))
    return sorted(found, key=lambda x: x.start)


def messages(chunks: list[WireChunk], bt: float) -> list[list[Transfer]]:
    """Each ``+CMTI`` … ``AT+CMGS=`` interval's transfers."""
    out, out_t = stream(chunks, Direction.TO_TE, bt)
    into, in_t = stream(chunks, Direction.TO_MODULE, bt)
    starts = [out_t[m.start()] - bt - 1e-9 for m in _URC.finditer(out)]
    ends = [in_t[m.end() - 1] for m in _CMGS.finditer(into)]
    result = []
    for i, start in enumerate(starts):
        nxt = starts[i + 1] if i + 1 < len(starts) else float("inf")
        end = next((e for e in ends if start < e <= nxt), None)
        if end is not None:
            result.append(transfers(chunks, bt, start, end))
    return result


def spread(values: list[float], scale: float = 1000.0) -> str:
    med = statistics.median(values) * scale
    return f"{med:.2f} ({min(values) * scale:.2f}–{max(values) * scale:.2f})"


def breakdown(per_message: list[list[Transfer]], bt: float, *, full: bool = False) -> str:
    """The table of transfers (median over the messages of the commonest shape: the
    same directions and lengths; the text shown is the first such message's)."""

    def shape(m: list[Transfer]) -> tuple[tuple[Direction, int], ...]:
        return tuple((t.direction, len(t.data)) for t in m)

    common, count = collections.Counter(shape(m) for m in per_message).most_common(1)[0]
    same = [m for m in per_message if shape(m) == common]
    lines = [
        f"{count} of {len(per_message)} messages had these transfers; ms, median (min–max). "
        "gap: from the end of the previous transfer to this one's first byte, thought by "
        "the side that then speaks; late: the line idle inside the transfer (hostsim's "
        "pacer).",
        "",
        "| # | who | bytes | wire | gap before | late | what |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    totals: dict[str, list[float]] = collections.defaultdict(list)
    for m in same:
        agent = hostsim = 0.0
        for k in range(len(m)):
            gap = m[k].start - max(t.end for t in m[:k]) if k else 0.0
            if m[k].direction is Direction.TO_MODULE:
                agent += max(gap, 0.0)
            else:
                hostsim += max(gap, 0.0)
            hostsim += m[k].late
        totals["agent"].append(agent)
        totals["hostsim"].append(hostsim)
        totals["reaction"].append(m[-1].end - m[0].start)
    for k, (direction, size) in enumerate(common):
        agent_side = direction is Direction.TO_MODULE
        who = "agent → module" if agent_side else "module → agent"
        wire = [size * bt] if bt else [0.0]
        if k:
            gaps = [m[k].start - max(t.end for t in m[:k]) for m in same]
            gap = f"{spread(gaps)} ({'agent' if agent_side else 'hostsim'})"
        else:
            gap = "–"
        text = same[0][k].data.decode("latin-1").replace("\r", "\\r").replace("\n", "\\n")
        text = text.replace("\x1a", "^Z").replace("|", "\\|")
        if len(text) > 70 and not full:
            text = text[:40] + " … " + text[-25:]
        late = spread([m[k].late for m in same])
        lines.append(f"| {k + 1} | {who} | {size} | {spread(wire)} | {gap} | {late} | `{text}` |")
    lines += [
        "",
        f"bytes {sum(size for _, size in common)}, on the wire "
        f"{sum(size for _, size in common) * bt * 1000:.2f} ms (less where an echo overlaps); "
        f"reaction {spread(totals['reaction'])}; agent thinking {spread(totals['agent'])}, "
        f"hostsim thinking and pacer {spread(totals['hostsim'])} (sums of the gaps).",
    ]
    return "\n".join(lines)


#: The line number in py-spy's frame names: the summary is per function.
_LINE = re.compile(r":\d+\)$")


def summarise(raw: Path, top: int = 40) -> str:
    """py-spy's raw (collapsed) stacks: the top functions, inclusive and self."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    if not total:
        return "no samples\n"
    out = [f"{total} samples", "", "inclusive (on the stack):"]
    out += [f"{100 * n / total:6.1f} %  {f}" for f, n in inclusive.most_common(top)]
    out += ["", "self (at the top of the stack):"]
    out += [f"{100 * n / total:6.1f} %  {f}" for f, n in own.most_common(top)]
    return "\n".join(out) + "\n"


async def run(args: argparse.Namespace) -> None:
    bt = byte_time(args.baud) if args.baud else 0.0
    rng = random.Random(f"exchanges:{args.mode}:{args.baud}")
    with tempfile.TemporaryDirectory(prefix="exchanges-") as name:
        tmp = Path(name)
        log = tmp / "bytes.jsonl"
        raw = tmp / "profile.raw"
        async with fleet(tmp, log, args.baud) as cloud:
            argv = argv_for(Receiver(args.receiver, args.receiver, args.mode), cloud.link, tmp)
            if args.receiver == "smscmd":
                argv[argv.index("WARNING")] = args.log_level
            spawned = time.monotonic()
            with (tmp / "agent.log").open("wb") as err:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.PIPE, stdout=err, stderr=err,
                    env=dict(os.environ, PYTHONPATH=str(REPO)),
                )  # fmt: skip
            spy = None
            try:
                await wait_ready(log, spawned, 60)
                if args.py_spy:  # the workload only, not the start-up
                    spy = await asyncio.create_subprocess_exec(
                        args.py_spy, "record", "--pid", str(proc.pid), "-r", str(args.rate),
                        "--format", "raw", "-o", str(raw), *args.spy_option,
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                    )  # fmt: skip
                    await asyncio.sleep(1.0)  # py-spy attached
                for _ in range(args.messages):
                    await cloud.deliver("ping")
                    await asyncio.wait_for(cloud.hooks.fleet.get(), REPLY_WAIT)
                    await asyncio.sleep(rng.uniform(0.02, 0.2))
                if args.burst:
                    await cloud.deliver(*["ping"] * args.burst)
                    for _ in range(args.burst):
                        await asyncio.wait_for(cloud.hooks.fleet.get(), REPLY_WAIT * 3)
            finally:
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    await asyncio.wait_for(spy.wait(), 30)
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)  # python-gsmmodem's replier: stdin too
                    assert proc.stdin is not None
                    proc.stdin.close()
                await asyncio.wait_for(proc.wait(), 30)
        chunks = read_log(log)
        if args.agent_log:
            shutil.copy(tmp / "agent.log", args.agent_log)
        if args.py_spy and args.profile:
            summary = f"# {' '.join(sys.argv)}\n" + summarise(raw)
            Path(args.profile).write_text(summary, encoding="utf-8")  # noqa: ASYNC240
        print(f"{args.receiver}, {args.mode} mode, "
              f"{'unpaced' if not args.baud else args.baud}, {args.messages} messages")  # fmt: skip
        if args.messages:
            print(breakdown(messages(chunks, bt)[: args.messages], bt, full=args.full))
    if args.py_spy and args.profile:
        print(f"profile summary in {args.profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("text", "pdu"), default="text")
    parser.add_argument("--receiver", choices=("smscmd", "gsmmodem"), default="smscmd",
                        help="gsmmodem: python-gsmmodem-new (SMSCMD_CLIENTS_VENV)")  # fmt: skip
    parser.add_argument("--baud", type=int, default=115200, help="0: unpaced")
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--burst", type=int, default=0)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--full", action="store_true", help="each transfer's whole text")
    parser.add_argument("--agent-log", help="where to copy the receiver's stderr")
    parser.add_argument("--py-spy", help="py-spy's path: profile the agent")
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument("--spy-option", action="append", default=[],
                        help="more py-spy options (e.g. --spy-option=--idle)")  # fmt: skip
    parser.add_argument("--profile", help="where the profile's summary goes")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
