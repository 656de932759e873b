"""The maintainer scripts of the gateway package (hardware/deb/postinst, prerm, postrm)
through dpkg's calls (Debian Policy §6.5 and §6.6: ``postinst configure [OLD]``,
``prerm remove|upgrade NEW``, ``postrm remove|purge``), each against a scratch root
(``DPKG_ROOT``) with stand-ins for the system's commands that record their arguments.

What they check is the scripts' own logic: who is created when, what is enabled,
started, stopped, and what purge deletes. The real commands on a real systemd are the
real-systemd tier's (``apt install ./smscmd_*.deb`` in a Debian 12 container).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from debpkg import REPO

SCRIPTS = REPO / "hardware" / "deb"

#: What each stand-in does besides recording ``NAME ARGS`` in ``calls``: ``db`` holds
#: the users and groups (``passwd NAME`` / ``group NAME``), ``overrides`` the
#: statoverride paths, ``was-enabled`` the exit status of ``deb-systemd-helper was-enabled``.
STANDINS = {
    "getent": 'grep -qx "$1 $2" "$STATE/db" || exit 2',
    "adduser": (
        'case " $* " in *" --system "*)\n'
        '  for n; do last=$n; done\n'
        '  printf "passwd %s\\ngroup %s\\n" "$last" "$last" >>"$STATE/db";;\n'
        "esac"
    ),
    "dpkg-statoverride": (
        'for p; do last=$p; done\n'
        'case " $* " in\n'
        '  *" --list "*) grep -qx "$last" "$STATE/overrides" || exit 1;;\n'
        '  *" --add "*) echo "$last" >>"$STATE/overrides";;\n'
        '  *" --remove "*) grep -vx "$last" "$STATE/overrides" >"$STATE/o" || :\n'
        '    mv "$STATE/o" "$STATE/overrides";;\n'
        "esac"
    ),
    "deb-systemd-helper": (
        'if [ "$1" = --quiet ] && [ "$2" = was-enabled ]; then\n'
        '  exit "$(cat "$STATE/was-enabled")"\n'
        "fi"
    ),
    # list-units PATTERN: the units of $STATE/active that match, as systemctl prints them.
    "systemctl": (
        'if [ "$1" = list-units ]; then\n'
        '  for n; do pattern=$n; done\n'
        '  while read -r unit; do\n'
        '    case $unit in $pattern) echo "$unit loaded active running";; esac\n'
        '  done <"$STATE/active"\n'
        "fi"
    ),
    **{name: "" for name in (
        "deb-systemd-invoke", "systemd-tmpfiles", "udevadm", "py3compile", "py3clean",
        "deluser", "delgroup", "userdel", "groupdel",
    )},
}  # fmt: skip
#: Real commands the scripts run (rm, find) and the stand-ins use.
TOOLS = ("rm", "find", "grep", "mv", "cat", "cut")


@dataclass
class Gateway:
    """A scratch root, the stand-ins' state, and the scripts run against them."""

    root: Path
    state: Path
    bin: Path

    def run(self, script: str, *args: str) -> list[str]:
        """``SCRIPT ARGS`` as dpkg runs it; the calls it made, in order."""
        calls = self.state / "calls"
        calls.write_text("")
        env = {"PATH": str(self.bin), "STATE": str(self.state), "DPKG_ROOT": str(self.root)}
        result = subprocess.run([str(SCRIPTS / script), *args], env=env, capture_output=True,
                                text=True, timeout=30, check=False)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return calls.read_text().splitlines()

    def users(self) -> list[str]:
        return (self.state / "db").read_text().splitlines()

    def systemd_running(self) -> None:
        (self.root / "run/systemd/system").mkdir(parents=True)

    def udev_running(self) -> socket.socket:
        (self.root / "run/udev").mkdir(parents=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(str(self.root / "run/udev/control"))
        return listener

    def running(self, *units: str) -> None:
        """What systemctl list-units shows as active."""
        (self.state / "active").write_text("".join(f"{unit}\n" for unit in units))

    def without(self, *names: str) -> None:
        """The commands ``names`` are gone (their packages were removed)."""
        for name in names:
            (self.bin / name).unlink()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    root, state, bin_ = tmp_path / "root", tmp_path / "state", tmp_path / "bin"
    for path in (root, state, bin_):
        path.mkdir()
    (state / "db").write_text("group dialout\n")
    (state / "overrides").write_text("")
    (state / "was-enabled").write_text("0")
    (state / "active").write_text("")
    for name, body in STANDINS.items():
        standin = bin_ / name
        standin.write_text(f'#!/bin/sh\necho "{name} $*" >>"$STATE/calls"\n{body}\nexit 0\n')
        standin.chmod(0o755)
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found is not None, tool
        os.symlink(found, bin_ / tool)
    yield Gateway(root, state, bin_)


def test_first_installation_creates_the_user_and_enables_and_starts(gateway: Gateway) -> None:
    gateway.systemd_running()
    (gateway.root / "usr/lib/tmpfiles.d").mkdir(parents=True)
    (gateway.root / "usr/lib/tmpfiles.d/smscmd.conf").write_text("")
    with gateway.udev_running():
        calls = gateway.run("postinst", "configure")
    assert calls == [
        "getent passwd smscmd",
        "adduser --quiet --system --group --home /var/lib/smscmd --no-create-home "
        "--shell /usr/sbin/nologin --comment smscmd agent smscmd",
        "getent group dialout",
        "adduser --quiet smscmd dialout",
        "dpkg-statoverride --list /etc/smscmd",
        "dpkg-statoverride --quiet --update --add root smscmd 0750 /etc/smscmd",
        "dpkg-statoverride --list /etc/smscmd/agent.toml",
        "dpkg-statoverride --quiet --update --add root smscmd 0640 /etc/smscmd/agent.toml",
        "py3compile -p smscmd /usr/share/smscmd",
        "deb-systemd-helper unmask smscmd.service",
        "deb-systemd-helper --quiet was-enabled smscmd.service",
        "deb-systemd-helper enable smscmd.service",
        "systemctl --system daemon-reload",
        "systemd-tmpfiles --create smscmd.conf",
        "deb-systemd-invoke start smscmd.service",
        "udevadm control --reload-rules",
        "udevadm trigger --subsystem-match=tty --action=add",
    ]
    assert gateway.users() == ["group dialout", "passwd smscmd", "group smscmd"]


def test_image_build_without_systemd_or_udev_enables_only(gateway: Gateway) -> None:
    """In a chroot (no /run/systemd/system, no udev) the unit is enabled for the first
    boot, nothing is started or reloaded."""
    calls = gateway.run("postinst", "configure")
    assert "deb-systemd-helper enable smscmd.service" in calls
    assert not [c for c in calls if c.split()[0] in {"systemctl", "deb-systemd-invoke", "udevadm"}]


def test_upgrade_keeps_the_user_the_modes_and_a_disabled_unit(gateway: Gateway) -> None:
    gateway.systemd_running()
    gateway.run("postinst", "configure")
    (gateway.state / "was-enabled").write_text("1")  # the operator ran systemctl disable
    calls = gateway.run("postinst", "configure", "0.0.9")
    made = ("adduser --quiet --system", "dpkg-statoverride --quiet")
    assert not [c for c in calls if c.startswith(made)]
    assert "adduser --quiet smscmd dialout" in calls  # idempotent, as install.sh's usermod
    assert "deb-systemd-helper enable smscmd.service" not in calls
    assert "deb-systemd-helper update-state smscmd.service" in calls
    # deb-systemd-invoke starts enabled units only: a disabled one stays stopped.
    assert calls[-1] == "deb-systemd-invoke start smscmd.service"


LIST = "systemctl list-units --plain --no-legend --state=active"


@pytest.mark.parametrize("action", ["remove", "upgrade"])
def test_prerm_stops_the_agent_before_the_files_change(gateway: Gateway, action: str) -> None:
    gateway.systemd_running()
    listed = [f"{LIST} smscmd@*.service"]
    if action == "remove":
        listed.append(f"{LIST} smscmd-action@*.path")
    assert gateway.run("prerm", action, "0.2.0") == [
        "deb-systemd-invoke stop smscmd.service",
        *listed,
        "py3clean -p smscmd",
    ]
    assert not (gateway.root / "run/smscmd.dpkg-restart").exists()


def test_upgrade_stops_and_starts_the_running_instances(gateway: Gateway) -> None:
    """smscmd@NAME agents run the package's code too: stopped before the files change,
    started again after (the action watches hold no code and keep running)."""
    gateway.systemd_running()
    gateway.running("smscmd.service", "smscmd@gw1.service", "smscmd@gw2.service",
                    "smscmd-action@reboot.path")  # fmt: skip
    assert gateway.run("prerm", "upgrade", "0.2.0") == [
        "deb-systemd-invoke stop smscmd.service",
        f"{LIST} smscmd@*.service",
        "deb-systemd-invoke stop smscmd@gw1.service",
        "deb-systemd-invoke stop smscmd@gw2.service",
        "py3clean -p smscmd",
    ]
    calls = gateway.run("postinst", "configure", "0.1.0")
    starts = [c for c in calls if c.startswith("deb-systemd-invoke")]
    assert starts == [
        "deb-systemd-invoke start smscmd.service",
        "deb-systemd-invoke start smscmd@gw1.service",
        "deb-systemd-invoke start smscmd@gw2.service",
    ]
    assert not (gateway.root / "run/smscmd.dpkg-restart").exists()
    # The next configure (no upgrade in between) starts no instance.
    again = gateway.run("postinst", "configure", "0.2.0")
    assert "deb-systemd-invoke start smscmd@gw1.service" not in again


def test_remove_stops_instances_and_action_watches(gateway: Gateway) -> None:
    gateway.systemd_running()
    gateway.running("smscmd@gw1.service", "smscmd-action@reboot.path", "other.service")
    stops = [c for c in gateway.run("prerm", "remove") if c.startswith("deb-systemd-invoke")]
    assert stops == [
        "deb-systemd-invoke stop smscmd.service",
        "deb-systemd-invoke stop smscmd@gw1.service",
        "deb-systemd-invoke stop smscmd-action@reboot.path",
    ]


def test_prerm_without_py3clean_removes_the_byte_code(gateway: Gateway) -> None:
    cache = gateway.root / "usr/share/smscmd/device/__pycache__"
    cache.mkdir(parents=True)
    (cache / "cli.cpython-311.pyc").write_bytes(b"")
    (gateway.root / "usr/share/smscmd/device/cli.py").write_text("")
    gateway.without("py3clean")
    assert gateway.run("prerm", "remove") == []
    assert not cache.exists() and (gateway.root / "usr/share/smscmd/device/cli.py").exists()


def populated(gateway: Gateway) -> None:
    for path in ("etc/smscmd/agent.toml", "var/lib/smscmd/journal.sqlite3"):
        (gateway.root / path).parent.mkdir(parents=True)
        (gateway.root / path).write_text("")
    gateway.run("postinst", "configure")


def test_remove_keeps_configuration_journal_and_user(gateway: Gateway) -> None:
    populated(gateway)
    gateway.systemd_running()
    calls = gateway.run("postrm", "remove")
    assert calls == ["systemctl --system daemon-reload", "deb-systemd-helper mask smscmd.service"]
    assert (gateway.root / "etc/smscmd/agent.toml").exists()
    assert (gateway.root / "var/lib/smscmd/journal.sqlite3").exists()
    assert "passwd smscmd" in gateway.users()


def test_purge_deletes_configuration_journal_and_user(gateway: Gateway) -> None:
    populated(gateway)
    calls = gateway.run("postrm", "purge")
    assert calls == [
        "deb-systemd-helper purge smscmd.service",
        "deb-systemd-helper unmask smscmd.service",
        "dpkg-statoverride --list /etc/smscmd/agent.toml",
        "dpkg-statoverride --quiet --remove /etc/smscmd/agent.toml",
        "dpkg-statoverride --list /etc/smscmd",
        "dpkg-statoverride --quiet --remove /etc/smscmd",
        "getent passwd smscmd",
        "deluser --quiet --system smscmd",
        "getent group smscmd",
        "delgroup --quiet --system --only-if-empty smscmd",
    ]
    assert not (gateway.root / "etc/smscmd").exists()
    assert not (gateway.root / "var/lib/smscmd").exists()
    assert (gateway.state / "overrides").read_text() == ""


def test_purge_removes_the_links_to_the_templates(gateway: Gateway) -> None:
    """The links `systemctl enable smscmd@gw1` and `smscmd-action@reboot.path` made point
    at templates that are gone; a link to anything that still exists stays."""
    populated(gateway)
    gone = gateway.root / "lib/systemd/system/smscmd@.service"
    kept = gateway.root / "lib/systemd/system/other@.service"
    kept.parent.mkdir(parents=True)
    kept.write_text("")
    links = {}
    for wants, name, target in (
        ("multi-user.target.wants", "smscmd@gw1.service", gone),
        ("paths.target.wants", "smscmd-action@reboot.path", gone),
        ("multi-user.target.wants", "smscmd@kept.service", kept),
    ):
        link = gateway.root / "etc/systemd/system" / wants / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
        links[name] = link
    gateway.run("postrm", "purge")
    assert not links["smscmd@gw1.service"].is_symlink()
    assert not links["smscmd-action@reboot.path"].is_symlink()
    assert links["smscmd@kept.service"].is_symlink()


def test_purge_after_the_dependencies_are_gone(gateway: Gateway) -> None:
    """postrm may run when adduser and init-system-helpers were removed (Policy §7.2)."""
    populated(gateway)
    gateway.without("deb-systemd-helper", "deluser", "delgroup")
    calls = gateway.run("postrm", "purge")
    assert "userdel smscmd" in calls and "groupdel smscmd" in calls
    assert not (gateway.root / "etc/smscmd").exists()
