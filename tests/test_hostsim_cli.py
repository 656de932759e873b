"""The ``hostsim run`` command line, as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from hostsim.cli import main

READY_TIMEOUT = 20.0
IO_TIMEOUT = 5.0


def read_line(stream: int, timeout: float) -> bytes:
    """One line from a pipe fd, bounded by ``timeout`` seconds (AssertionError on expiry)."""
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                raise AssertionError(f"no line within {timeout}s (got {buf!r})")
            chunk = os.read(stream, 4096)
            if not chunk:
                raise AssertionError(f"EOF before a full line (got {buf!r})")
            buf += chunk
    return buf.split(b"\n", 1)[0]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_ready_line_at_and_signal(tmp_path: Path, signum: signal.Signals) -> None:
    link = tmp_path / "modem"
    with (tmp_path / "stderr.log").open("wb") as errlog:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hostsim",
                "run",
                "--link",
                str(link),
                "--log-level",
                "debug",
                "--api",
                "127.0.0.1:0",
                "--seed",
                "7",
            ],
            stdout=subprocess.PIPE,
            stderr=errlog,
        )
        try:
            assert proc.stdout is not None
            ready = json.loads(read_line(proc.stdout.fileno(), READY_TIMEOUT))
            assert ready["event"] == "ready"
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", ready["api"])
            assert re.fullmatch(r"AC[0-9a-f]{32}", ready["account_sid"])
            assert re.fullmatch(r"[0-9a-f]{32}", ready["auth_token"])
            [entry] = ready["sims"]
            assert re.fullmatch(r"HS[0-9a-f]{32}", entry["sid"])
            assert entry["unique_name"] == "sim0"
            assert entry["link"] == str(link)
            assert entry["pty"].startswith("/dev/pts/")
            assert os.path.realpath(link) == entry["pty"]
            with serial.Serial(str(link), 115200, timeout=IO_TIMEOUT) as ser:
                ser.write(b"AT+CGMI\r")
                assert ser.read_until(b"\r\nOK\r\n") == b"AT+CGMI\r\r\nQuectel\r\n\r\nOK\r\n"
            proc.send_signal(signum)
            assert proc.wait(timeout=READY_TIMEOUT) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=READY_TIMEOUT)
            if proc.stdout is not None:
                proc.stdout.close()
    assert not link.is_symlink()
    assert b"modem -> TE" in (tmp_path / "stderr.log").read_bytes()


def test_usage_errors() -> None:
    with pytest.raises(SystemExit) as excinfo:
        main([])
    assert excinfo.value.code == 2
    with pytest.raises(SystemExit) as excinfo:
        main(["run", "--log-level", "LOUD"])
    assert excinfo.value.code == 2


def test_unwritable_link_exits_1(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hostsim", "run", "--link", str(tmp_path / "no" / "such" / "dir")],
        capture_output=True,
        timeout=READY_TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"cannot start" in result.stderr


def test_several_sims_stable_sids_and_env_credentials(tmp_path: Path) -> None:
    link = tmp_path / "gw"
    env = dict(os.environ, HOSTSIM_ACCOUNT_SID="AC" + "ab" * 16, HOSTSIM_AUTH_TOKEN="s3cret")

    def start() -> dict[str, object]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hostsim", "run", "--sims", "2", "--link", str(link),
             "--api", "127.0.0.1:0", "--seed", "42"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            ready: dict[str, object] = json.loads(read_line(proc.stdout.fileno(), READY_TIMEOUT))
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=READY_TIMEOUT) == 0
            return ready
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=READY_TIMEOUT)
            if proc.stdout is not None:
                proc.stdout.close()

    first, second = start(), start()
    assert first["account_sid"] == "AC" + "ab" * 16 and first["auth_token"] == "s3cret"
    sims = first["sims"]
    assert isinstance(sims, list)
    assert [s["unique_name"] for s in sims] == ["sim0", "sim1"]
    assert [s["link"] for s in sims] == [f"{link}0", f"{link}1"]
    assert [s["sid"] for s in sims] == [s["sid"] for s in second["sims"]]  # type: ignore[attr-defined]


def test_bad_api_address_and_account() -> None:
    for argv in (
        ["run", "--api", "nowhere"],
        ["run", "--account-sid", "XX1"],
        ["run", "--sims", "0"],
    ):
        with pytest.raises(SystemExit) as excinfo:
            main(argv)
        assert excinfo.value.code == 2


def test_fault_flags_shape_the_modem_output(tmp_path: Path) -> None:
    link = tmp_path / "modem"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hostsim", "run", "--link", str(link), "--api", "127.0.0.1:0",
         "--seed", "3", "--fault-bare-lf", "--fault-urc-flood", "1", "--fault-echo-stuck",
         "--fault-chunk-size", "4", "--fault-chunk-delay", "0.001", "--fault-invalid-cmti",
         "--fault-cms-on-send", "0.5", "--fault-sent-anyway", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(read_line(proc.stdout.fileno(), READY_TIMEOUT))
        assert ready["event"] == "ready"
        with serial.Serial(str(link), 115200, timeout=IO_TIMEOUT) as ser:
            ser.write(b"ATE0\r")
            assert ser.read_until(b"\nOK\n").startswith(b"ATE0\r\n+QIND: ")
            ser.write(b"AT+CGMI\r")
            out = ser.read_until(b"\nOK\n")
        assert out.startswith(b"AT+CGMI\r")  # echo stuck on
        lines = out[len(b"AT+CGMI\r") :].split(b"\n")
        assert b"\r" not in out[len(b"AT+CGMI\r") :]  # bare LF
        assert [line.startswith(b"+QIND: ") for line in lines if line] == [
            True, False, True, False,
        ]  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=READY_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=READY_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--fault-cms-on-send", "1.5"],
        ["run", "--fault-sent-anyway", "x"],
        ["run", "--fault-chunk-size", "-1"],
        ["run", "--fault-chunk-delay", "-0.5"],
        ["run", "--fault-chunk-delay", "120"],
        ["run", "--fault-urc-flood", "5000"],
    ],
)
def test_bad_fault_flags_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    assert excinfo.value.code == 2
