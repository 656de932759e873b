"""A gateway in the container of :mod:`systemd.container`: hostsim's modem on a pty and
its SmsCommands API, the agent's configuration and unit state, for the real-systemd
tier (``tests/test_nspawn*.py``).

Also what the tier needs on the host: the cached tree (``tests/systemd/rootfs``), a
wheelhouse (``hardware/install.sh wheelhouse``), and :func:`unavailable`: a tier that
cannot run here is skipped with the reason, and fails with ``CI=true``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from systemd.container import Container, poll

REPO = Path(__file__).resolve().parents[2]
ROOTFS = REPO / "tests" / "systemd" / "rootfs"
INSTALL = "bash tests/systemd/install"
#: Where the checkout is seen inside (read-only), and the wheelhouse built on the host.
SRC = "/src/smscmd"
WHEELHOUSE = "/src/wheelhouse"
#: Bound of every wait on the agent (a reply, a state) and on hostsim.
WAIT = 30.0
UNIT = "smscmd.service"


def unavailable(reason: str) -> NoReturn:
    """The tier cannot run here: skip, or fail with CI=true (it must run in CI)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"the real-systemd tier cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def rootfs() -> Path:
    """The cached tree, built now if missing (minutes, the first time)."""
    if os.geteuid() != 0:
        unavailable("needs root (systemd-nspawn, overlay mounts)")
    for tool in ("systemd-nspawn", "debootstrap", "nsenter"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (install it with `{INSTALL}`)")
    if "overlay" not in Path("/proc/filesystems").read_text():
        unavailable("the kernel has no overlay file system")
    try:
        done = subprocess.run(
            [str(ROOTFS)], check=False, capture_output=True, text=True, timeout=1200
        )
    except subprocess.TimeoutExpired:
        unavailable(f"{ROOTFS} did not finish in 20 minutes")
    if done.returncode != 0:
        unavailable(f"{ROOTFS} failed (no network for the first build?): {done.stderr[-2000:]}")
    return Path(done.stdout.strip())


def wheelhouse(factory: pytest.TempPathFactory) -> Path:
    """``hardware/install.sh wheelhouse DIR`` on the host (pip from the index), once per
    session (the tier's modules run on one worker: they share it)."""
    target = factory.getbasetemp() / "wheelhouse"
    if (target / ".complete").exists():
        return target
    done = subprocess.run(
        [str(REPO / "hardware" / "install.sh"), "wheelhouse", str(target)],
        check=False, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        unavailable(f"install.sh wheelhouse failed (no network?): {done.stderr[-2000:]}")
    (target / ".complete").touch()
    return target


#: Run by the container's python3: one request to hostsim's API (the container has a
#: network of its own), argv: method, URL, Basic credentials, form as JSON or "".
_REQUEST = """
import json, sys, urllib.parse, urllib.request
method, url, auth, form = sys.argv[1:]
data = urllib.parse.urlencode(json.loads(form)).encode() if form else None
request = urllib.request.Request(url, data=data, method=method)
request.add_header("Authorization", "Basic " + auth)
with urllib.request.urlopen(request, timeout=10) as response:
    sys.stdout.write(response.read().decode())
"""


@dataclass(frozen=True, slots=True)
class Api:
    """hostsim's SmsCommands API inside ``box``, asked from inside (python3 -c)."""

    box: Container
    url: str
    auth: str
    sim: str

    @classmethod
    def from_ready(cls, box: Container, ready: dict[str, Any]) -> Api:
        token = f"{ready['account_sid']}:{ready['auth_token']}".encode()
        sim: str = ready["sims"][0]["unique_name"]
        return cls(box, ready["api"], base64.b64encode(token).decode(), sim)

    def _request(self, method: str, path: str, form: dict[str, str] | None = None) -> Any:
        body = json.dumps(form) if form is not None else ""
        done = self.box.run(["python3", "-c", _REQUEST, method, self.url + path, self.auth, body])
        return json.loads(done.stdout)

    def from_sim(self) -> list[dict[str, Any]]:
        """Every ``from_sim`` command so far (a page of 1000, newest first)."""
        page = self._request("GET", "/v1/SmsCommands?Direction=from_sim&PageSize=1000")
        commands: list[dict[str, Any]] = page["sms_commands"]
        return commands

    def ask(self, payload: str, timeout: float = WAIT) -> str:
        """Send ``payload`` to the Sim; the payload of the first new ``from_sim`` reply."""
        seen = {c["sid"] for c in self.from_sim()}
        self._request("POST", "/v1/SmsCommands", {"Sim": self.sim, "Payload": payload})

        def reply() -> str | None:
            new = [c for c in self.from_sim() if c["sid"] not in seen]
            return str(new[-1]["payload"]) if new else None

        return poll(f"a reply to {payload!r}", reply, timeout, interval=0.2)


def start_hostsim(box: Container, hostsim: str) -> tuple[Api, str]:
    """``hostsim run`` (the program ``hostsim`` inside) as a transient service of the
    container's systemd, its API on any free port of the loopback; its pty made what
    udev makes of a modem's port on Debian (root:dialout 0660). (API, pty path)."""
    box.run(["systemd-run", "--unit=hostsim", "--property=StandardOutput=file:/run/hostsim.json",
             "--property=StandardError=journal",
             "--", hostsim, "run", "--api", "127.0.0.1:0"])  # fmt: skip
    ready_file = box.path("/run/hostsim.json")

    def ready() -> dict[str, Any] | None:
        text = ready_file.read_text() if ready_file.exists() else ""
        if not text.endswith("\n"):
            return None
        line: dict[str, Any] = json.loads(text.splitlines()[0])
        return line

    found = poll("hostsim's ready line", ready, WAIT)
    pty: str = found["sims"][0]["pty"]
    box.run(["chown", "root:dialout", pty])
    box.run(["chmod", "0660", pty])
    return Api.from_ready(box, found), pty


@dataclass(frozen=True, slots=True)
class Gateway:
    """The booted container with the agent's unit ``smscmd`` on hostsim's modem."""

    box: Container
    api: Api
    port: str

    def config(self, extra: str = "") -> None:
        """Write /etc/smscmd/agent.toml (root:smscmd 0640, as install.sh makes it) for
        hostsim's pty, with ``extra`` TOML after the [agent] table."""
        self.box.write(
            "/etc/smscmd/agent.toml",
            f'[agent]\nport = "{self.port}"\njournal = "/var/lib/smscmd/journal.sqlite3"\n'
            f"{extra}",
            0o640,
        )
        self.box.run(["chown", "root:smscmd", "/etc/smscmd/agent.toml"])

    def main_pid(self) -> int:
        return int(self.box.show("smscmd", "MainPID"))

    def ready(self, timeout: float = WAIT) -> str:
        """Wait until the unit is active and its STATUS says the modem is ready; the STATUS."""

        def status() -> str | None:
            state = self.box.show("smscmd", "ActiveState")
            text = self.box.show("smscmd", "StatusText")
            return text if state == "active" and text.startswith("modem ready") else None

        return poll("smscmd active with the modem ready", status, timeout, interval=0.2)

    def systemd_messages(self) -> list[str]:
        """What systemd logged this boot about the unit: PID 1's messages naming it, and
        those of the unit's own processes before they exec the agent (``(smscmd)``:
        sandbox set-up). The agent's own log lines are left out."""
        out = self.box.run(["journalctl", "-b", "--no-pager", "-o", "json"]).stdout
        messages = []
        for line in out.splitlines():
            entry = json.loads(line)
            message = entry.get("MESSAGE")
            if not isinstance(message, str):  # a binary message is a list of bytes
                continue
            by_manager = entry.get("_PID") == "1" and "smscmd" in message
            if by_manager or entry.get("SYSLOG_IDENTIFIER") == "(smscmd)":
                messages.append(message)
        return messages

    def exposure(self) -> float:
        """``systemd-analyze security smscmd``'s overall exposure (printed for the log)."""
        out = self.box.run(["systemd-analyze", "security", "--no-pager", UNIT]).stdout
        match = re.search(r"Overall exposure level for smscmd\.service: (\d+\.\d)", out)
        assert match is not None, out
        print(f"systemd-analyze security {UNIT}: {match.group(1)}")
        return float(match.group(1))


#: What :meth:`Gateway.systemd_messages` must not say about a unit file or its sandbox.
SUSPICIOUS = re.compile(r"unknown|ignor|deprecat|invalid|failed to|not supported|warn", re.I)


def no_systemd_warnings(gateway: Gateway) -> None:
    """Assert that systemd said nothing suspicious about the unit, and that
    ``systemd-analyze verify`` is silent."""
    found = [m for m in gateway.systemd_messages() if SUSPICIOUS.search(m)]
    assert found == [], "systemd about the unit:\n" + "\n".join(found)
    done = gateway.box.run(["systemd-analyze", "verify", UNIT], check=False)
    output = done.stdout + done.stderr
    assert (done.returncode, output) == (0, ""), f"systemd-analyze verify: {output}"
