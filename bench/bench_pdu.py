"""PDU decodes per second: ``device.sms.decode_pdu`` against smspdudecoder. Never part of the tests.

Run: ``python3 bench/bench_pdu.py`` (a few seconds). Both decoders read the
same generated SMS-DELIVER PDUs (hex, with the SMSC prefix): a seeded mix of
GSM 7-bit, extension characters, UCS-2 with emoji and concatenated parts, short
and full-length. Each figure is the median of several repetitions; the output
is a markdown snippet for BENCHMARKS.md (merged by hand, not written here).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from device.sms import decode_pdu, encode_deliver, gsm7, split_for_concat  # noqa: E402

REPEATS = 7
COUNT = 400
SEED = 20240506


def generate(count: int, seed: int) -> list[str]:
    """``count`` DELIVER PDUs: a quarter each GSM short, GSM long part, UCS-2, UCS-2 long part."""
    rng = random.Random(seed)
    basic = [ch for code, ch in enumerate(gsm7.BASIC) if code != gsm7.ESCAPE]
    wide = list("日本語ü😀🎉€abc ")
    out: list[str] = []
    for i in range(count):
        when = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**8))
        when = when.astimezone(timezone(timedelta(minutes=15 * rng.randint(-48, 56))))
        sender = "+" + "".join(rng.choice("0123456789") for _ in range(11))
        kind = i % 4
        if kind == 0:
            text = "".join(rng.choice([*basic, "€", "["]) for _ in range(rng.randint(5, 60)))
            out.append(encode_deliver(sender, text, timestamp=when))
        elif kind == 1:
            text = "".join(rng.choice(basic) for _ in range(300))
            part, concat = split_for_concat(text, rng.randrange(256))[0]
            assert isinstance(part, str)
            out.append(encode_deliver(sender, part, timestamp=when, concat=concat))
        elif kind == 2:
            text = "".join(rng.choice(wide) for _ in range(rng.randint(5, 30)))
            out.append(encode_deliver(sender, text, timestamp=when))
        else:
            text = "".join(rng.choice(wide) for _ in range(200))
            part, concat = split_for_concat(text, rng.randrange(256))[0]
            assert isinstance(part, str)
            out.append(encode_deliver(sender, part, timestamp=when, concat=concat))
    return out


def rate(decode: Callable[[str], object], pdus: list[str]) -> float:
    """Median decodes per second over REPEATS passes."""
    for pdu in pdus[:20]:  # warm up
        decode(pdu)
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for pdu in pdus:
            decode(pdu)
        rates.append(len(pdus) / (time.perf_counter() - start))
    return statistics.median(rates)


def markdown() -> str:
    """The PDU figures as a Markdown section (bench/run.py puts it in BENCHMARKS.md)."""
    pdus = generate(COUNT, SEED)
    ours = rate(decode_pdu, pdus)
    rows = [("smscmd `decode_pdu` (construct 2.10, not compiled)", ours)]
    try:
        from smspdudecoder.easy import read_incoming_sms
    except ImportError:
        print("smspdudecoder not installed: pip install -e '.[test]'", file=sys.stderr)
    else:
        rows.append(("smspdudecoder `read_incoming_sms` 2.2", rate(read_incoming_sms, pdus)))
    lines = [
        f"## PDU decoding ({COUNT} generated SMS-DELIVER PDUs, median of {REPEATS})",
        "",
        "| decoder | decodes/s | µs/decode |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {value:,.0f} | {1e6 / value:.1f} |" for name, value in rows]
    if len(rows) == 2:
        lines += ["", f"Ratio smscmd / smspdudecoder: {rows[0][1] / rows[1][1]:.2f}×"]
    return "\n".join(lines) + "\n"


def main() -> None:
    print(markdown())


if __name__ == "__main__":
    main()
