"""Coverage-guided fuzzing of the AT codec with atheris (libFuzzer).

One input picks a line bound, the body mode, a pending command, a chunking and
the bytes; the target checks what the codec promises for *any* bytes:

* nothing raises but the project's own errors (:class:`device.errors.SmscmdError`;
  the codec raises none at all), and its per-line guard never fires (no
  :attr:`~device.at.codec.GarbageKind.FAULT` event: that would be a bug caught);
* the events are the same whole and chunked;
* the buffer stays within ``max_line`` and the line-end searches within twice
  the bytes fed (linear work);
* :func:`~device.at.codec.parse_final` of the same bytes as text raises nothing.

Run it by hand for as long as you like (libFuzzer flags pass through)::

    PYTHONPATH=. python3 tests/fuzz_codec.py --runs 2000000
    PYTHONPATH=. python3 tests/fuzz_codec.py -- -max_total_time=600 corpus_dir/

``tests/test_fuzz_codec.py`` runs it briefly in CI (a bounded number of runs) and
drives :func:`check` with hypothesis as well.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import itertools
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from device.at.codec import AtCodec, Event, Garbage, GarbageKind, parse_final
from device.errors import SmscmdError

COMMANDS = ("AT", "AT+CSQ", "AT+CMGR=1", "AT+CMGL=4", 'AT+CMGS="000"', "ATI", None)

#: Seeds for the fuzzer: real answers to start mutating from.
SEEDS = (
    b'\r\n+CMGR: "REC UNREAD","003000300030",,"26/11/25,10:00:00+04"\r\n0070\r\n\r\nOK\r\n',
    b'\r\n+CMGL: 0,1,,3\r\n07911326040000F0\r\n+CMTI: "SM",1\r\n\r\nOK\r\n',
    b"\r\n> \x1a\r\n+CMGS: 3\r\n\r\nOK\r\n\nRDY\n\r+CME ERROR: \xb2\r",
    b"\r\n+CMS ERROR: invalid memory index\r\n+CMT: ,24\r\n0011\r\n",
)


def check(data: bytes, max_line: int, hex_bodies: bool, command: str | None,
          cuts: Sequence[int]) -> None:  # fmt: skip
    """Every property above, for one input; AssertionError names a broken one."""

    def feed(pieces: Sequence[bytes]) -> tuple[list[Event], AtCodec]:
        codec = AtCodec(max_line, hex_bodies=hex_bodies)
        if command is not None:
            codec.begin(command)
        events: list[Event] = []
        for piece in pieces:
            events += codec.feed(piece)
            assert len(codec._buf) <= max_line, "buffer past its bound"
        return events, codec

    whole, codec = feed([data])
    assert codec.scanned <= 2 * len(data), "line-end search not linear"
    for event in whole:
        assert not (isinstance(event, Garbage) and event.kind is GarbageKind.FAULT), event
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert feed(pieces)[0] == whole, "chunking changed the events"
    parse_final(data.decode("latin-1"))


def one_input(raw: bytes) -> None:
    """The atheris target: the input split into settings and bytes."""
    import atheris

    fdp = atheris.FuzzedDataProvider(raw)
    max_line = fdp.ConsumeIntInRange(4, 300)
    hex_bodies = fdp.ConsumeBool()
    command = COMMANDS[fdp.ConsumeIntInRange(0, len(COMMANDS) - 1)]
    cuts = [fdp.ConsumeIntInRange(0, 4096) for _ in range(fdp.ConsumeIntInRange(0, 8))]
    data = fdp.ConsumeBytes(fdp.remaining_bytes())
    with contextlib.suppress(SmscmdError):  # the project's own typed errors are allowed
        check(data, max_line, hex_bodies, command, cuts)


def _instrument(atheris: Any) -> None:
    """Coverage feedback from the codec's own functions only (``instrument_all`` would
    take half a minute over the whole standard library)."""
    from device.at import codec, errors

    for module in (codec, errors):
        for obj in vars(module).values():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            members = vars(obj).values() if inspect.isclass(obj) else [obj]
            for member in members:
                if inspect.isfunction(member):
                    atheris.instrument_func(member)


def main(argv: Sequence[str] | None = None) -> None:
    """``--runs N`` (default: until stopped) and libFuzzer flags after ``--``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=-1, help="inputs to try (-1: no limit)")
    parser.add_argument("libfuzzer", nargs="*", help="flags and corpus dirs for libFuzzer")
    args = parser.parse_args(argv)
    import atheris

    _instrument(atheris)
    corpus = [a for a in args.libfuzzer if not a.startswith("-")]
    if not corpus:
        # No corpus given: start from the seeds, in a directory libFuzzer may add to.
        seeds = Path(tempfile.mkdtemp(prefix="fuzz-codec-"))
        for n, seed in enumerate(SEEDS):
            (seeds / f"seed{n}").write_bytes(seed)
        corpus = [str(seeds)]
    flags = [a for a in args.libfuzzer if a.startswith("-")]
    atheris.Setup([sys.argv[0], f"-runs={args.runs}", *flags, *corpus], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
