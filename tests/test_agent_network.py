"""``install.sh install --agent-network [HOST ...]``: IP for the agent's own connections
(an MQTT broker, a metrics listener on loopback) and only to loopback and the named
hosts, in a scratch root (``--root DIR --no-venv``, as tests/test_install_files.py).

The drop-in is checked against the unit it loosens (what it opens, what it keeps
closed), by ``systemd-analyze verify``, and by the exposure that hardware/README.md
quotes (``systemd-analyze security --offline=true``); tests/test_nspawn.py runs it under
a real systemd. ``IPAddressAllow=`` takes addresses and prefixes only (systemd.resource-
control(5)), so a host name is resolved by install.sh; a stand-in ``getent`` on ``PATH``
plays the DNS here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from test_install_files import (
    INSTALL,
    SYSTEM,
    SYSTEMD,
    _analyzable,
    _exposure,
    _files,
    _install,
    _mode,
    _run,
    _settings,
    _tool,
)

HARDWARE = SYSTEMD.parent
DROPIN = SYSTEMD / "drop-in/agent-network.conf"
SERVICES = ("smscmd.service", "smscmd@.service")


def _installed(root: Path, service: str = "smscmd.service") -> Path:
    return root / SYSTEM / f"{service}.d/agent-network.conf"


def _allowed(text: str) -> list[str]:
    return [line.removeprefix("IPAddressAllow=") for line in _settings(text)
            if line.startswith("IPAddressAllow=")]  # fmt: skip


def test_the_drop_in_opens_ip_to_loopback_and_keeps_the_deny() -> None:
    unit = _settings((SYSTEMD / "smscmd.service").read_text())
    dropin = _settings(DROPIN.read_text())
    assert "PrivateNetwork=yes" in unit and "IPAddressDeny=any" in unit
    assert dropin == [
        "[Service]",
        "PrivateNetwork=no",
        "RestrictAddressFamilies=AF_INET AF_INET6",
        "IPAddressAllow=localhost",
    ]
    # The unit's IPAddressDeny=any is not cleared (an empty IPAddressDeny= would).
    assert not any(line.startswith("IPAddressDeny") for line in dropin)


def test_on_with_hosts_kept_and_off(tmp_path: Path) -> None:
    _install(tmp_path, "--agent-network")
    for service in SERVICES:
        assert _installed(tmp_path, service).read_text() == DROPIN.read_text()
        assert _mode(_installed(tmp_path, service)) == 0o644
    # Addresses and prefixes are taken as given, one line each, in both services.
    result = _install(tmp_path, "--agent-network", "192.0.2.7", "2001:db8::/64", "--action",
                      "reboot")  # fmt: skip
    assert "loopback and 192.0.2.7 2001:db8::/64" in result.stdout
    for service in SERVICES:
        text = _installed(tmp_path, service).read_text()
        assert text.startswith(DROPIN.read_text())
        assert _allowed(text) == ["localhost", "192.0.2.7", "2001:db8::/64"]
    assert (tmp_path / "etc/smscmd/actions/reboot").exists()  # the words after end at --action
    again = _install(tmp_path)
    assert "keeping /etc/systemd/system/smscmd.service.d/agent-network.conf" in again.stdout
    assert _allowed(_installed(tmp_path).read_text())[-1] == "2001:db8::/64"
    # A re-run with the option writes it anew, with the hosts of that run.
    _install(tmp_path, "--agent-network")
    assert _installed(tmp_path).read_text() == DROPIN.read_text()
    _install(tmp_path, "--no-agent-network")
    assert not _installed(tmp_path).exists()
    assert not (tmp_path / SYSTEM / "smscmd@.service.d/agent-network.conf").exists()


def test_a_name_is_resolved_at_install_time_with_the_name_servers(tmp_path: Path) -> None:
    """A name from /etc/hosts needs nothing more; a name the DNS answers also needs the
    name servers (the agent resolves it again): the stand-in getent answers
    ``ahosts broker.example`` as the DNS would and knows nothing under ``-s files``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    getent = bin_dir / "getent"
    getent.write_text(
        "#!/bin/sh\n"
        '[ "$1" = -s ] && exit 2\n'
        'printf "198.51.100.4    STREAM broker.example\\n198.51.100.4    DGRAM\\n'
        '2001:db8::4     STREAM\\n"\n'
    )
    getent.chmod(0o755)
    _install(tmp_path / "hosts", "--agent-network", "localhost")
    text = _installed(tmp_path / "hosts").read_text()
    assert "# localhost" in text and "# the name servers" not in text
    assert set(_allowed(text)[1:]) <= {"127.0.0.1", "::1"}
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = _run("bash", INSTALL, "install", "--root", tmp_path / "dns", "--no-venv",
                  "--agent-network", "broker.example", env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    allowed = _allowed(_installed(tmp_path / "dns").read_text())
    assert allowed[:2] == ["localhost", "198.51.100.4 2001:db8::4"]
    servers = re.findall(r"^nameserver\s+([^\s%]+)", Path("/etc/resolv.conf").read_text(), re.M)
    if servers:
        assert allowed[2:] == [" ".join(servers)]
    else:
        assert allowed[2:] == []


def test_unresolvable_or_malformed_hosts_are_refused(tmp_path: Path) -> None:
    bad = _run("bash", INSTALL, "install", "--root", tmp_path, "--no-venv",
               "--agent-network", "no-such-host.invalid")  # fmt: skip
    assert bad.returncode == 1
    assert "no-such-host.invalid does not resolve here" in bad.stderr
    assert not _installed(tmp_path).exists()
    for host in ("a b", "x\nIPAddressAllow=any", "$(id)"):
        result = _run("bash", INSTALL, "install", "--root", tmp_path, "--no-venv",
                      "--agent-network", host)  # fmt: skip
        assert result.returncode == 2, host
        assert "--agent-network: not an address" in result.stderr
    wrong = _run("bash", INSTALL, "uninstall", "--root", tmp_path, "--agent-network")
    assert wrong.returncode == 2


def test_uninstall_removes_it(tmp_path: Path) -> None:
    _install(tmp_path, "--agent-network", "192.0.2.7")
    result = _run("bash", INSTALL, "uninstall", "--root", tmp_path)
    assert result.returncode == 0, result.stderr
    assert not any("agent-network" in name for name in _files(tmp_path))


def test_verify_clean_and_exposure_as_documented(tmp_path: Path) -> None:
    """hardware/README.md quotes the exposure with the drop-in for loopback alone and
    with a broker's address beside it; both above the unit's, below the handlers'
    network's (which opens every address)."""
    _tool("systemd-analyze")
    _install(tmp_path / "closed")
    _install(tmp_path / "loop", "--agent-network")
    _install(tmp_path / "host", "--agent-network", "192.0.2.7")
    _install(tmp_path / "open", "--handlers-network")
    units = {name: _analyzable(tmp_path / name, tmp_path / f"{name}-units")
             for name in ("closed", "loop", "host", "open")}  # fmt: skip
    verify = _run("systemd-analyze", "verify", units["host"] / "smscmd.service",
                  units["host"] / "smscmd@modem2.service")  # fmt: skip
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    score = {name: _exposure(path / "smscmd.service") for name, path in units.items()}
    assert _exposure(units["host"] / "smscmd@modem2.service") == score["host"]
    assert score["closed"] < score["loop"] < score["host"] < score["open"]
    readme = (HARDWARE / "README.md").read_text()
    assert f"| with `agent-network.conf` (loopback only) | {score['loop']} |" in readme
    assert f"| with `agent-network.conf` and a broker's address | {score['host']} |" in readme
    top = (HARDWARE.parent / "README.md").read_text()  # its MQTT section's table
    assert f"| as shipped | {score['closed']} |" in top
    assert f"| `--agent-network` (loopback) | {score['loop']} |" in top
    assert f"| `--agent-network 192.0.2.7` | {score['host']} |" in top
    assert f"| `--handlers-network` | {score['open']} |" in top
