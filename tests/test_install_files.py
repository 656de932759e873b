"""What ``install.sh install`` writes, and what ``uninstall`` takes away, in a scratch root.

``install --root DIR --no-venv`` writes the units, drop-ins, action units, udev rules and
configuration under DIR (no virtualenv: tests/test_install.py installs one from a
wheelhouse), creates no user and tells no systemd, so these run anywhere, as anyone.
The units are then checked by the systemd-analyze of this machine (``verify`` and the
``security`` exposure that hardware/README.md quotes); a unit file given by path makes
systemd-analyze load the drop-ins of the directory it sits in, as systemd would.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from device.config import load_config

ROOT = Path(__file__).resolve().parent.parent
HARDWARE = ROOT / "hardware"
INSTALL = HARDWARE / "install.sh"
SYSTEMD = HARDWARE / "systemd"
UNITS = ("smscmd.service", "smscmd@.service", "smscmd-action@.path", "smscmd-action@.service")
SYSTEM = Path("etc/systemd/system")


def _run(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=False, env=env,
    )  # fmt: skip


def _install(root: Path, *options: str) -> subprocess.CompletedProcess[str]:
    result = _run("bash", INSTALL, "install", "--root", root, "--no-venv", *options)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _files(root: Path) -> set[str]:
    """Every file and symlink under root, relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _tool(name: str) -> None:
    """Skip without the tool on a developer's machine; in CI (tests/install-tools) fail."""
    if shutil.which(name) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing: tests/install-tools installs it")
        pytest.skip(f"{name} not installed (tests/install-tools)")


# --------------------------------------------------------------------------- files


def test_install_writes_the_units_rules_and_configuration(tmp_path: Path) -> None:
    result = _install(tmp_path)
    for unit in UNITS:
        installed = tmp_path / SYSTEM / unit
        assert installed.read_text() == (SYSTEMD / unit).read_text(), unit
        assert _mode(installed) == 0o644
    rules = tmp_path / "etc/udev/rules.d/99-smscmd.rules"
    assert rules.read_text() == (HARDWARE / "udev/99-smscmd.rules").read_text()
    config = tmp_path / "etc/smscmd"
    assert _mode(config) == 0o750
    assert _mode(config / "agent.toml") == 0o640
    assert (config / "agent.toml").read_text() == (HARDWARE / "agent.toml.example").read_text()
    # Without the options: no drop-in, no action, no virtualenv, and nothing outside root.
    assert _files(tmp_path) == {
        *(f"{SYSTEM}/{unit}" for unit in UNITS),
        "etc/udev/rules.d/99-smscmd.rules",
        "etc/smscmd/agent.toml",
    }
    assert "(--root: no user is created)" in result.stdout
    assert "(--root: systemd is not told)" in result.stdout


def test_prefix_is_substituted_in_both_services(tmp_path: Path) -> None:
    _install(tmp_path, "--prefix", "/srv/smscmd-venv")
    for unit in ("smscmd.service", "smscmd@.service"):
        text = (tmp_path / SYSTEM / unit).read_text()
        assert "/opt/smscmd" not in text, unit
        assert re.search(r"^ExecStart=/srv/smscmd-venv/bin/smscmd run ", text, re.MULTILINE)


def test_port_sets_the_port_of_a_new_agent_toml(tmp_path: Path) -> None:
    _install(tmp_path, "--port", "/dev/smscmd-eg25g")
    config = load_config(tmp_path / "etc/smscmd/agent.toml")
    assert config.port == "/dev/smscmd-eg25g"
    assert config.control_socket == Path("/run/smscmd/control.sock")


def test_kept_agent_toml_is_made_readable_by_the_group(tmp_path: Path) -> None:
    """An existing file is never rewritten; a mode the agent (group smscmd) cannot read
    is fixed to 0640 (the chown to root:smscmd is skipped under --root)."""
    config = tmp_path / "etc/smscmd/agent.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[agent]\nport = "/dev/ttyUSB2"\n')
    config.chmod(0o600)
    result = _install(tmp_path, "--port", "/dev/other")
    assert config.read_text() == '[agent]\nport = "/dev/ttyUSB2"\n'
    assert _mode(config) == 0o640
    assert "keeping the existing /etc/smscmd/agent.toml" in result.stdout
    assert "it was mode 600: now 0640" in result.stdout
    assert "--port /dev/other not applied to the kept file" in result.stdout
    again = _install(tmp_path)
    assert "now 0640" not in again.stdout


# --------------------------------------------------------------------------- instances


def test_instance_gets_its_own_config_journal_and_socket(tmp_path: Path) -> None:
    """smscmd@NAME reads /etc/smscmd/NAME.toml, which names the journal under the unit's
    StateDirectory=smscmd/%i and the socket under RuntimeDirectory=smscmd@%i: so that
    `smscmd status --config NAME.toml` finds that instance's socket."""
    _install(tmp_path, "--instance", "modem2", "--port", "/dev/smscmd-sim7600")
    assert not (tmp_path / "etc/smscmd/agent.toml").exists()
    file = tmp_path / "etc/smscmd/modem2.toml"
    assert _mode(file) == 0o640
    config = load_config(file)
    assert config.port == "/dev/smscmd-sim7600"
    assert config.journal == Path("/var/lib/smscmd/modem2/journal.sqlite3")
    assert config.control_socket == Path("/run/smscmd@modem2/control.sock")
    template = (SYSTEMD / "smscmd@.service").read_text()
    assert "\nExecStart=/opt/smscmd/bin/smscmd run --config /etc/smscmd/%i.toml\n" in template
    assert "\nStateDirectory=smscmd/%i\n" in template
    assert "\nRuntimeDirectory=smscmd@%i\n" in template
    # Two instances (and smscmd.service) share no runtime directory: systemd removes a
    # unit's RuntimeDirectory when it stops.
    _install(tmp_path, "--instance", "modem3")
    other = load_config(tmp_path / "etc/smscmd/modem3.toml")
    assert other.control_socket.parent != config.control_socket.parent
    assert other.journal.parent != config.journal.parent
    assert Path("/run/smscmd") not in {other.control_socket.parent, config.control_socket.parent}


def test_instance_names_that_would_clash_are_refused(tmp_path: Path) -> None:
    for name in ("agent", "a/b", "-x", "", "a.b"):
        result = _run("bash", INSTALL, "install", "--root", tmp_path, "--no-venv",
                      "--instance", name)  # fmt: skip
        assert result.returncode == 2, name
    relative = _run("bash", INSTALL, "install", "--root", tmp_path, "--port", "ttyUSB2")
    assert relative.returncode == 2
    assert not tmp_path.joinpath("etc").exists()


def _settings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith(("#", ";"))]


def test_template_is_the_service_but_for_its_paths() -> None:
    """smscmd@.service keeps every setting of smscmd.service (hardening, timeouts, the
    device helper's UMask) except the lines that name the instance."""
    service = _settings((SYSTEMD / "smscmd.service").read_text())
    template = _settings((SYSTEMD / "smscmd@.service").read_text())
    per_instance = ("Description=", "ExecStart=", "StateDirectory=", "RuntimeDirectory=")
    assert [s for s in service if not s.startswith(per_instance)] == [
        s for s in template if not s.startswith(per_instance)
    ]
    assert len(template) == len(service)


# --------------------------------------------------------------------------- drop-ins


def test_handlers_network_drop_in_on_kept_and_off(tmp_path: Path) -> None:
    dropin = (SYSTEMD / "drop-in/handlers-network.conf").read_text()
    _install(tmp_path, "--handlers-network")
    for service in ("smscmd.service", "smscmd@.service"):
        installed = tmp_path / SYSTEM / f"{service}.d/handlers-network.conf"
        assert installed.read_text() == dropin
        assert _mode(installed) == 0o644
    # An upgrade without the option keeps it, and says so.
    again = _install(tmp_path)
    assert "keeping /etc/systemd/system/smscmd.service.d/handlers-network.conf" in again.stdout
    assert (tmp_path / SYSTEM / "smscmd.service.d/handlers-network.conf").exists()
    # The operator's own drop-in stays when ours goes.
    override = tmp_path / SYSTEM / "smscmd.service.d/override.conf"
    override.write_text("[Service]\nEnvironment=X=1\n")
    off = _install(tmp_path, "--no-handlers-network")
    assert not (tmp_path / SYSTEM / "smscmd.service.d/handlers-network.conf").exists()
    assert override.exists()
    assert "override.conf: not install.sh's" in off.stdout
    assert not (tmp_path / SYSTEM / "smscmd@.service.d").exists()


def test_handlers_network_drop_in_opens_what_the_unit_closes() -> None:
    unit = _settings((SYSTEMD / "smscmd.service").read_text())
    dropin = _settings((SYSTEMD / "drop-in/handlers-network.conf").read_text())
    assert "PrivateNetwork=yes" in unit and "PrivateNetwork=no" in dropin
    assert "IPAddressDeny=any" in unit and "IPAddressDeny=" in dropin
    assert "RestrictAddressFamilies=AF_UNIX" in unit
    assert "RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK" in dropin
    # Nothing else is loosened.
    assert len(dropin) == 4


# --------------------------------------------------------------------------- actions


def test_action_reboot_installs_script_handler_request_dir_and_path_unit(tmp_path: Path) -> None:
    result = _install(tmp_path, "--action", "reboot")
    script = tmp_path / "etc/smscmd/actions/reboot"
    assert script.read_text() == (HARDWARE / "actions/reboot").read_text()
    assert _mode(script) == 0o755
    handler = tmp_path / "usr/local/lib/smscmd/handlers/request-action"
    assert _mode(handler) == 0o755
    tmpfiles = (tmp_path / "etc/tmpfiles.d/smscmd.conf").read_text()
    assert re.search(r"^d /run/smscmd-actions 0700 smscmd smscmd -$", tmpfiles, re.MULTILINE)
    for service in ("smscmd.service", "smscmd@.service"):
        dropin = tmp_path / SYSTEM / f"{service}.d/actions.conf"
        assert _settings(dropin.read_text()) == ["[Service]", "ReadWritePaths=-/run/smscmd-actions"]
    # Enabled as `systemctl enable smscmd-action@reboot.path` would: a link to the template.
    link = tmp_path / SYSTEM / "paths.target.wants/smscmd-action@reboot.path"
    assert os.readlink(link) == "/etc/systemd/system/smscmd-action@.path"
    assert '[handlers."reboot"]' in result.stdout


def test_unknown_or_malformed_action_is_refused(tmp_path: Path) -> None:
    unknown = _run("bash", INSTALL, "install", "--root", tmp_path, "--no-venv",
                   "--action", "format-disk")  # fmt: skip
    assert unknown.returncode == 1
    assert "no action format-disk" in unknown.stderr
    assert "shipped: reboot" in unknown.stderr
    for name in ("../x", "Reboot", "a b", "-r"):
        result = _run("bash", INSTALL, "install", "--root", tmp_path, "--no-venv",
                      "--action", name)  # fmt: skip
        assert result.returncode == 2, name


def test_action_units_run_only_roots_script() -> None:
    """The request names an enabled path unit's instance, nothing else: the service runs
    /etc/smscmd/actions/%i, removes the request first and never reads it."""
    path = _settings((SYSTEMD / "smscmd-action@.path").read_text())
    assert "PathExists=/run/smscmd-actions/%i" in path
    assert "Unit=smscmd-action@%i.service" in path
    assert "ConditionFileIsExecutable=/etc/smscmd/actions/%i" in path
    service = _settings((SYSTEMD / "smscmd-action@.service").read_text())
    exec_lines = [s for s in service if s.startswith("Exec")]
    assert exec_lines == [
        "ExecStartPre=/bin/rm -rf -- /run/smscmd-actions/%i",
        "ExecStart=/etc/smscmd/actions/%i",
    ]
    assert "Type=oneshot" in service


def _handler(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["SMSCMD_ACTIONS_DIR"] = str(tmp_path / "actions")
    env["SMSCMD_ACTION_REQUESTS"] = str(tmp_path / "requests")
    return _run(HARDWARE / "handlers/request-action", *args, env=env)


def test_request_action_handler(tmp_path: Path) -> None:
    (tmp_path / "requests").mkdir()
    # Not enabled here: failed, with the reason, and no request.
    off = _handler(tmp_path, "reboot", "now please")
    assert off.returncode == 1
    assert "reboot is not enabled here" in off.stderr
    assert off.stdout == ""
    assert not (tmp_path / "requests/reboot").exists()
    (tmp_path / "actions").mkdir()
    shutil.copy(HARDWARE / "actions/reboot", tmp_path / "actions/reboot")
    on = _handler(tmp_path, "reboot", "now please")
    assert on.returncode == 0, on.stderr
    assert on.stdout == "reboot: requested"
    # The request is an empty file named after the configured action, not the argument.
    assert [p.name for p in (tmp_path / "requests").iterdir()] == ["reboot"]
    assert (tmp_path / "requests/reboot").read_bytes() == b""
    for bad in ("../../etc/x", "", "-rf"):
        assert _handler(tmp_path, bad).returncode == 2, bad
    shutil.rmtree(tmp_path / "requests")
    missing = _handler(tmp_path, "reboot")
    assert missing.returncode == 1
    assert "actions.conf" in missing.stderr


# --------------------------------------------------------------------------- uninstall


def test_uninstall_removes_what_install_created_and_keeps_config_and_journal(
    tmp_path: Path,
) -> None:
    _install(tmp_path, "--handlers-network", "--action", "reboot")
    _install(tmp_path, "--instance", "modem2")
    journal = tmp_path / "var/lib/smscmd/journal.sqlite3"
    journal.parent.mkdir(parents=True)
    journal.write_bytes(b"SQLite format 3\0")
    (tmp_path / SYSTEM / "multi-user.target.wants").mkdir()
    (tmp_path / SYSTEM / "multi-user.target.wants/smscmd@modem2.service").symlink_to(
        "/etc/systemd/system/smscmd@.service"
    )
    override = tmp_path / SYSTEM / "smscmd.service.d/override.conf"
    override.write_text("[Service]\nEnvironment=X=1\n")
    (tmp_path / "usr/local/lib/smscmd/handlers/checkin").write_text("#!/bin/sh\n")
    result = _run("bash", INSTALL, "uninstall", "--root", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    kept = _files(tmp_path)
    assert kept == {
        "etc/smscmd/agent.toml",
        "etc/smscmd/modem2.toml",
        "etc/smscmd/actions/reboot",
        "var/lib/smscmd/journal.sqlite3",
        f"{SYSTEM}/smscmd.service.d/override.conf",
        "usr/local/lib/smscmd/handlers/checkin",
    }
    assert "kept: /var/lib/smscmd (the journals) and /etc/smscmd" in result.stdout
    # Run again: nothing left to do, no error.
    again = _run("bash", INSTALL, "uninstall", "--root", tmp_path)
    assert again.returncode == 0, again.stderr
    assert _files(tmp_path) == kept


def test_systemd_and_udev_absent_are_said_not_fatal(tmp_path: Path) -> None:
    """On this machine without a running systemd (a container, CI), a dry run of a real
    install says so; with one, it reloads and restarts what ran."""
    result = _run("bash", INSTALL, "install", "--dry-run", "--no-venv", "--action", "reboot")
    assert result.returncode == 0, result.stdout + result.stderr
    if Path("/run/systemd/system").is_dir():
        assert "+ systemctl daemon-reload" in result.stdout
        assert "+ systemctl enable --now smscmd-action@reboot.path" in result.stdout
    else:
        assert "(systemd is not running here" in result.stdout
        assert "smscmd-action@reboot.path" in result.stdout
    udev = _run("udevadm", "control", "--ping") if shutil.which("udevadm") else None
    if udev is not None and udev.returncode == 0:
        assert "+ udevadm control --reload" in result.stdout
    else:
        assert "(udev is not running here" in result.stdout


# --------------------------------------------------------------------------- systemd-analyze


def _analyzable(root: Path, into: Path) -> Path:
    """The installed /etc/systemd/system with its programs pointing at /bin/true (verify
    checks that they exist) and instances of the templates."""
    shutil.copytree(root / SYSTEM, into, symlinks=True)
    true = shutil.which("true") or "/bin/true"
    for unit in into.glob("smscmd*.service"):
        text = unit.read_text().replace("/opt/smscmd/bin/smscmd", true)
        unit.write_text(text.replace("/etc/smscmd/actions/%i", true))
    for template, instance in (
        ("smscmd@", "smscmd@modem2"),
        ("smscmd-action@", "smscmd-action@reboot"),
    ):
        for suffix in (".service", ".path"):
            if (into / f"{template}{suffix}").exists():
                shutil.copy(into / f"{template}{suffix}", into / f"{instance}{suffix}")
    return into


def test_units_and_drop_ins_verify_clean(tmp_path: Path) -> None:
    _tool("systemd-analyze")
    _install(tmp_path / "root", "--handlers-network", "--action", "reboot")
    units = _analyzable(tmp_path / "root", tmp_path / "units")
    names = ["smscmd.service", "smscmd@modem2.service", "smscmd-action@reboot.path",
             "smscmd-action@reboot.service"]  # fmt: skip
    result = _run("systemd-analyze", "verify", *(units / n for n in names))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr


def _exposure(unit: Path) -> float:
    result = _run("systemd-analyze", "security", "--offline=true", "--no-pager", unit)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    if match is None and "--offline" in result.stderr:
        pytest.skip(f"systemd-analyze has no --offline: {result.stderr.strip()}")
    assert match is not None, result.stdout + result.stderr
    return float(match.group(1))


def test_exposure_with_and_without_the_network_drop_in_is_as_documented(tmp_path: Path) -> None:
    """hardware/README.md quotes both figures; the template scores as the service."""
    _tool("systemd-analyze")
    _install(tmp_path / "closed", "--action", "reboot")
    _install(tmp_path / "open", "--handlers-network", "--action", "reboot")
    closed = _analyzable(tmp_path / "closed", tmp_path / "closed-units")
    opened = _analyzable(tmp_path / "open", tmp_path / "open-units")
    without = _exposure(closed / "smscmd.service")
    with_network = _exposure(opened / "smscmd.service")
    assert _exposure(closed / "smscmd@modem2.service") == without
    assert _exposure(opened / "smscmd@modem2.service") == with_network
    assert with_network > without
    readme = (HARDWARE / "README.md").read_text()
    assert f"| the unit as shipped | {without} |" in readme
    assert f"| with `handlers-network.conf` | {with_network} |" in readme
