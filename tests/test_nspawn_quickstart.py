"""The README's Quick start, as written, with the distribution's Python: its first
command (``python3 -m venv .venv && . .venv/bin/activate && pip install -e . &&
smscmd demo``, read from README.md) run by a user without root, in a copy of the
checkout in their home, in a fresh Debian 12 (its python3 3.11.2, python3-venv)
booted with ``systemd-nspawn`` (:mod:`systemd.container`), pip from the network.

This container shares the host's network (pip reaches the index) and the host's CA
bundle (a network whose proxy re-signs TLS has its CA there). A pip that cannot reach
the index at all is a skip (outside CI), as for the rest of the tier; any other
failure fails. Same tier, marker, group and requirements as ``tests/test_nspawn.py``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from systemd.container import booted
from systemd.gateway import REPO, SRC, rootfs, unavailable

pytestmark = [pytest.mark.systemd, pytest.mark.xdist_group("systemd"), pytest.mark.timeout(600)]

USER = "dev"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
#: pip's words for an index it cannot reach (no network, no name resolution).
NO_INDEX = re.compile(
    r"Temporary failure in name resolution|NewConnectionError|Network is unreachable"
)


def quick_start() -> str:
    """The first command of the README's Quick start block."""
    readme = (REPO / "README.md").read_text()
    match = re.search(r"^## Quick start\n+```sh\n(.+)\n", readme, re.MULTILINE)
    assert match is not None, "README.md has no Quick start code block"
    return match.group(1)


def checkout(target: Path) -> Path:
    """A copy of the checkout as a clone has it: without build products, caches,
    virtual environments or git's files."""
    shutil.copytree(REPO, target, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis",
    ))  # fmt: skip
    return target


def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    command = quick_start()
    assert command.endswith("smscmd demo"), command
    tree = rootfs()
    source = checkout(tmp_path / "src")
    binds = [(source, SRC), (CA_BUNDLE, str(CA_BUNDLE))]
    with booted(tree, tmp_path / "box", binds=binds, network=True) as box:
        assert box.run(["python3", "-V"]).stdout.strip() == "Python 3.11.2"
        box.run(["useradd", "--create-home", USER])
        box.run(["cp", "-r", SRC, f"/home/{USER}/smscmd"], user=USER)
        done = box.run(
            ["/bin/sh", "-c", f"cd ~/smscmd && {command}"], user=USER, timeout=420, check=False
        )
        if done.returncode != 0 and NO_INDEX.search(done.stdout + done.stderr):
            unavailable(f"pip cannot reach the package index: {done.stderr[-1000:]}")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        # The demo's three commands came back through the API as replies, and it ended.
        for reply in ("'checkin ok: firmware update", "'location ok: 52.520008,13.404954'",
                      "'pong' (received)"):  # fmt: skip
            assert reply in done.stdout, done.stdout[-3000:]
        assert done.stdout.rstrip().endswith("done"), done.stdout[-3000:]
