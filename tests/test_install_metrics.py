"""``install.sh install --metrics-textfile``: the drop-in that lets ``[metrics]`` write
node_exporter's textfile directory under the unit's ``ProtectSystem=strict``, in a scratch
root as tests/test_install_files.py does (its helpers), verified and scored by this
machine's systemd-analyze (the figure hardware/README.md and the README quote)."""

from __future__ import annotations

from pathlib import Path

from test_install_files import (
    HARDWARE,
    SYSTEM,
    SYSTEMD,
    _analyzable,
    _exposure,
    _install,
    _mode,
    _run,
    _settings,
    _tool,
)

from device.metrics.config import parse_metrics

DROPIN = "metrics-textfile.conf"
SERVICES = ("smscmd.service", "smscmd@.service")


def test_the_drop_in_on_kept_and_off(tmp_path: Path) -> None:
    result = _install(tmp_path, "--metrics-textfile")
    for service in SERVICES:
        installed = tmp_path / SYSTEM / f"{service}.d/{DROPIN}"
        assert installed.read_text() == (SYSTEMD / "drop-in" / DROPIN).read_text()
        assert _mode(installed) == 0o644
    directory = tmp_path / "var/lib/prometheus/node-exporter"
    assert directory.is_dir() and _mode(directory) == 0o775
    assert "metrics textfile: metrics-textfile.conf" in result.stdout
    again = _install(tmp_path)
    assert f"keeping /etc/systemd/system/smscmd.service.d/{DROPIN}" in again.stdout
    off = _install(tmp_path, "--no-metrics-textfile")
    assert "no metrics textfile" in off.stdout
    assert not (tmp_path / SYSTEM / "smscmd.service.d").exists()
    assert not (tmp_path / SYSTEM / "smscmd@.service.d").exists()
    assert directory.is_dir()  # node_exporter's: kept


def test_uninstall_removes_the_drop_in(tmp_path: Path) -> None:
    _install(tmp_path, "--metrics-textfile", "--handlers-network")
    done = _run("bash", HARDWARE / "install.sh", "uninstall", "--root", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / SYSTEM / "smscmd.service.d").exists()


def test_the_drop_in_opens_the_default_directory_and_nothing_else() -> None:
    """Only the directory [metrics] documents as Debian's (optional: "-"); no network."""
    dropin = _settings((SYSTEMD / "drop-in" / DROPIN).read_text())
    assert dropin == ["[Service]", "ReadWritePaths=-/var/lib/prometheus/node-exporter"]
    table = parse_metrics({"textfile_directory": "/var/lib/prometheus/node-exporter"},
                          Path("/etc/smscmd/agent.toml"))  # fmt: skip
    assert table.textfile == Path("/var/lib/prometheus/node-exporter/smscmd.prom")


def test_verify_clean_and_the_exposure_is_as_documented(tmp_path: Path) -> None:
    """The drop-in neither breaks the unit (verify) nor changes its exposure score:
    ReadWritePaths= is not one of the settings systemd-analyze security weighs."""
    _tool("systemd-analyze")
    _install(tmp_path / "closed", "--action", "reboot")
    _install(tmp_path / "textfile", "--metrics-textfile", "--action", "reboot")
    closed = _analyzable(tmp_path / "closed", tmp_path / "closed-units")
    units = _analyzable(tmp_path / "textfile", tmp_path / "textfile-units")
    verify = _run("systemd-analyze", "verify", units / "smscmd.service",
                  units / "smscmd@modem2.service")  # fmt: skip
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    without = _exposure(closed / "smscmd.service")
    with_textfile = _exposure(units / "smscmd.service")
    assert _exposure(units / "smscmd@modem2.service") == with_textfile
    assert with_textfile == without
    readme = (HARDWARE / "README.md").read_text()
    assert f"| with `{DROPIN}` | {with_textfile} |" in readme
