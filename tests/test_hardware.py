"""hardware/: the example configuration, the systemd unit, the udev rules.

install.sh itself is tested in tests/test_install.py.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from device.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
HARDWARE = ROOT / "hardware"
UNIT = HARDWARE / "systemd" / "smscmd.service"
RULES = HARDWARE / "udev" / "99-smscmd.rules"
INSTALL = HARDWARE / "install.sh"
EXAMPLE = HARDWARE / "agent.toml.example"

#: The issue's bound for `systemd-analyze security --offline=true`.
MAX_EXPOSURE = 2.5


def _run(*argv: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --------------------------------------------------------------------------- config


def test_example_config_is_the_defaults_except_port() -> None:
    config = load_config(EXAMPLE)
    assert config.port == "/dev/smscmd-at"
    assert config == dataclasses.replace(Config(), port=config.port)


def test_example_config_names_every_key() -> None:
    from device.config import _KEYS

    text = EXAMPLE.read_text()
    for table, keys in _KEYS.items():
        assert f"[{table}]" in text, table
        for key in keys:
            assert re.search(rf"^{re.escape(key)} = ", text, re.MULTILINE), f"{table}.{key}"


# --------------------------------------------------------------------------- unit


def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key, []).append(value)
    return settings


def test_unit_settings() -> None:
    s = _unit_settings()
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] == ["60"]
    assert s["Restart"] == ["on-failure"]
    assert s["User"] == ["smscmd"]
    assert s["SupplementaryGroups"] == ["dialout"]
    assert s["StateDirectory"] == ["smscmd"]
    assert s["RuntimeDirectory"] == ["smscmd"]
    assert s["ExecStart"] == ["/opt/smscmd/bin/smscmd run --config /etc/smscmd/agent.toml"]
    # systemctl reload: SIGHUP, which the agent takes as "read the configuration again"
    # (device.service.Service.reload; tests/test_reload.py), to the main process only.
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["DevicePolicy"] == ["closed"]
    assert {"char-ttyUSB rw", "char-ttyACM rw"} <= set(s["DeviceAllow"])
    # The agent drains within the stop timeout; the control socket path matches the config.
    stop = Config()
    assert int(s["TimeoutStopSec"][0]) >= stop.handler_timeout + stop.send_timeout
    # The configuration directory's mode is the one install.sh gives /etc/smscmd
    # (tests/test_install.py checks the directory install.sh makes against it).
    assert s["ConfigurationDirectoryMode"] == ["0750"]
    # Operators in the smscmd group read the journal (device.journal FILE_MODE 0640,
    # DIR_MODE 0750; tests/test_operator.py reads one as such a user).
    assert s["StateDirectoryMode"] == ["0750"] and s["UMask"] == ["0027"]
    assert Config().control_socket == Path("/run/smscmd/control.sock")
    assert Config().journal.parent == Path("/var/lib/smscmd")


def _analyzable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an existing binary (verify checks it exists)."""
    unit = tmp_path / "smscmd.service"
    true = shutil.which("true") or "/bin/true"
    unit.write_text(
        UNIT.read_text().replace("ExecStart=/opt/smscmd/bin/smscmd", f"ExecStart={true}")
    )
    return unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_verify_is_clean(tmp_path: Path) -> None:
    result = _run("systemd-analyze", "verify", _analyzable_unit(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_exposure(tmp_path: Path) -> None:
    result = _run(
        "systemd-analyze", "security", "--offline=true", "--no-pager", _analyzable_unit(tmp_path)
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    if match is None and "--offline" in result.stderr:
        pytest.skip(f"systemd-analyze has no --offline: {result.stderr.strip()}")
    assert match is not None, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


# --------------------------------------------------------------------------- udev


def _rule_lines() -> list[str]:
    return [
        line.strip()
        for line in RULES.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_udev_rules_syntax() -> None:
    key = re.compile(r'^(?:[A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|=|\+=|-=|:=)\s*"[^"]*"$')
    labels = set()
    gotos = set()
    for line in _rule_lines():
        for part in (p.strip() for p in line.split(", ")):
            assert key.match(part), f"bad key in {line!r}: {part!r}"
        labels.update(re.findall(r'LABEL="([^"]+)"', line))
        gotos.update(re.findall(r'GOTO="([^"]+)"', line))
    assert gotos <= labels


MODULE_IDS = {("2c7c", "0296"), ("2c7c", "0125"), ("1e0e", "9001"), ("05c6", "90b2")}
_IDS = re.compile(r'idVendor}=="(\w+)", ATTRS\{idProduct}=="(\w+)"')


def _sections() -> tuple[list[str], list[str]]:
    """The rules before the tty-only gate (whole USB devices) and after it (tty ports)."""
    lines = _rule_lines()
    gate = lines.index('SUBSYSTEM!="tty", GOTO="smscmd_end"')
    return lines[:gate], lines[gate + 1 :]


def test_udev_module_rules() -> None:
    _, tty = _sections()
    modules = [line for line in tty if "ATTRS{idVendor}" in line]
    ids = {(m.group(1), m.group(2)) for line in modules if (m := _IDS.search(line))}
    assert ids == MODULE_IDS
    for line in modules:
        assert 'ENV{ID_MM_DEVICE_IGNORE}="1"' in line, line
        assert 'SYMLINK+="smscmd-at smscmd-' in line, line
        assert 'GROUP="dialout"' in line, line
        assert 'MODE="0660"' in line, line
        assert re.search(r'ENV\{\.SMSCMD_IFNUM}=="0\d"', line), line


def test_udev_keeps_modemmanager_off_the_whole_usb_device() -> None:
    """ID_MM_DEVICE_IGNORE is device-wide ("ignore all ports exposed by the device",
    ModemManager API reference, "Common udev tags"): set for every event below each
    module's USB device (ATTRS matches the device itself too), before the tty gate, so the
    module's other ttys, its cdc-wdm and wwan ports and the usb_device carry it."""
    whole, _ = _sections()
    device_rules = [line for line in whole if "ID_MM_DEVICE_IGNORE" in line]
    ids = {(m.group(1), m.group(2)) for line in device_rules if (m := _IDS.search(line))}
    assert ids == MODULE_IDS
    for line in device_rules:
        assert line.startswith('SUBSYSTEMS=="usb", ATTRS{idVendor}=='), line
        assert "SUBSYSTEM==" not in line and "KERNEL==" not in line, line
        assert "SYMLINK" not in line, line
    assert whole[0] == 'ACTION=="remove", GOTO="smscmd_end"'
