"""hardware/install.sh run for real: into a scratch root (``--root``), from a wheelhouse.

``install --root DIR`` writes every file under DIR instead of / and creates no user, so
these tests check what install.sh writes (files, contents, modes) without touching the
host. The wheelhouse is built once per module from the package index (the one network
use, bounded by a timeout); every install from it runs in a new network namespace
(``unshare -n``, where this machine allows it) with pip's configuration ignored, so an
install that reached for the network would fail here.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HARDWARE = ROOT / "hardware"
INSTALL = HARDWARE / "install.sh"
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _run(
    *argv: str | Path, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def _can_unshare_net() -> bool:
    if shutil.which("unshare") is None:
        return False
    return _run("unshare", "-n", "true").returncode == 0


UNSHARE = _can_unshare_net()


def _offline_env() -> dict[str, str]:
    """This process's environment without pip's configuration (index, find-links)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def _offline(*argv: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    prefix: Sequence[str] = ("unshare", "-n") if UNSHARE else ()
    return _run(*prefix, "bash", INSTALL, *argv, timeout=timeout, env=_offline_env())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


needs_system_python = pytest.mark.skipif(
    not SYSTEM_PYTHON.exists(), reason="no /usr/bin/python3 (install.sh's default)"
)


# --------------------------------------------------------------------------- the script


def test_install_script_parses() -> None:
    result = _run("bash", "-n", INSTALL)
    assert result.returncode == 0, result.stderr


def _tool(name: str) -> None:
    """Skip without the tool on a developer's machine; in CI (tests/install-tools) fail."""
    if shutil.which(name) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing: tests/install-tools installs it")
        pytest.skip(f"{name} not installed (tests/install-tools)")


def test_install_script_shellcheck() -> None:
    _tool("shellcheck")
    scripts = [INSTALL, ROOT / "tests/install-tools", HARDWARE / "actions/reboot"]
    scripts += [HARDWARE / "handlers" / name for name in ("checkin", "request-action")]
    result = _run("shellcheck", *scripts)
    assert result.returncode == 0, result.stdout + result.stderr


def test_install_usage_errors() -> None:
    assert _run("bash", INSTALL).returncode == 2
    assert _run("bash", INSTALL, "frobnicate", "--dry-run").returncode == 2
    assert _run("bash", INSTALL, "install", "--dry-run", "--prefix", "relative").returncode == 2
    assert _run("bash", INSTALL, "install", "--dry-run", "--root", "relative").returncode == 2
    # wheelhouse needs its directory; the target options belong to it alone.
    assert _run("bash", INSTALL, "wheelhouse").returncode == 2
    assert _run("bash", INSTALL, "wheelhouse", "--platform", "x").returncode == 2
    platform = ("--platform", "manylinux2014_aarch64")
    assert _run("bash", INSTALL, "install", "--dry-run", *platform).returncode == 2


@needs_system_python
def test_install_dry_run(tmp_path: Path) -> None:
    prefix = tmp_path / "venv"
    result = _run("bash", INSTALL, "install", "--dry-run", "--prefix", prefix)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "dry run" in out
    # The distribution's Python, whatever python3 comes first on PATH.
    assert f"+ /usr/bin/python3 -m venv {prefix}\n" in out
    assert f"{prefix}/bin/python -m pip --disable-pip-version-check install" in out
    assert "--no-index" not in out
    assert "/etc/systemd/system/smscmd.service" in out
    assert "/etc/udev/rules.d/99-smscmd.rules" in out
    assert "/etc/smscmd/agent.toml" in out
    assert "dialout" in out
    assert not prefix.exists()


def test_uninstall_dry_run(tmp_path: Path) -> None:
    prefix = tmp_path / "venv"
    prefix.mkdir()
    (prefix / "pyvenv.cfg").write_text("home = /usr/bin\n")
    result = _run("bash", INSTALL, "uninstall", "--dry-run", "--prefix", prefix)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"rm -rf -- {prefix}" in result.stdout
    assert "kept: /var/lib/smscmd (the journals)" in result.stdout
    assert (prefix / "pyvenv.cfg").exists()
    # A prefix that is not a virtualenv is never removed.
    (prefix / "pyvenv.cfg").unlink()
    other = _run("bash", INSTALL, "uninstall", "--dry-run", "--prefix", prefix)
    assert "is not a virtualenv (no pyvenv.cfg): left alone" in other.stdout
    assert f"rm -rf -- {prefix}" not in other.stdout


def test_install_dry_run_other_python(tmp_path: Path) -> None:
    """--python names the interpreter; its version and venv module are checked first."""
    import sys

    prefix = tmp_path / "venv"
    result = _run("bash", INSTALL, "install", "--dry-run", "--prefix", prefix,
                  "--python", sys.executable)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"+ {sys.executable} -m venv {prefix}\n" in result.stdout


def test_install_refuses_a_python_that_is_not_311(tmp_path: Path) -> None:
    missing = _run("bash", INSTALL, "install", "--dry-run", "--python", tmp_path / "python9")
    assert missing.returncode == 1
    assert f"no Python at {tmp_path / 'python9'}" in missing.stderr
    false = shutil.which("false") or "/bin/false"
    old = _run("bash", INSTALL, "install", "--dry-run", "--python", false)
    assert old.returncode == 1
    assert "smscmd needs Python >= 3.11" in old.stderr


@needs_system_python
def test_install_names_the_venv_package_when_ensurepip_is_missing(tmp_path: Path) -> None:
    """Debian's python3 without python3-venv has no ensurepip (``python3 -m venv`` fails)."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "ensurepip.py").write_text("raise ImportError('ensurepip is in python3-venv')\n")
    python = tmp_path / "python3"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={shadow} exec {SYSTEM_PYTHON} "$@"\n')
    python.chmod(0o755)
    result = _run("bash", INSTALL, "install", "--dry-run", "--python", python)
    assert result.returncode == 1
    assert "apt-get install python3-venv" in result.stderr


# --------------------------------------------------------------------------- wheelhouse


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheelhouse for this machine, built by ``install.sh wheelhouse`` (needs the index)."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 (install.sh's default)")
    target = tmp_path_factory.mktemp("wheelhouse")
    result = _run("bash", INSTALL, "wheelhouse", target, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def _names(directory: Path) -> set[str]:
    return {p.name.split("-")[0].lower().replace("_", "-") for p in directory.glob("*.whl")}


@pytest.mark.timeout(900)
def test_wheelhouse_holds_project_dependencies_and_build_requirements(wheelhouse: Path) -> None:
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = _names(wheelhouse)
    assert "smscmd" in names
    required = [*pyproject["project"]["dependencies"], *pyproject["build-system"]["requires"]]
    for requirement in required:
        name = requirement.split(">")[0].split("=")[0].split("<")[0].split(";")[0].strip()
        assert name.lower() in names, (name, sorted(names))
    # aiohttp's own dependencies came along (it imports them at once).
    assert {"multidict", "yarl", "aiosignal", "frozenlist"} <= names
    assert not list(wheelhouse.glob("*.tar.gz")), "a source release the target must build"


@pytest.mark.timeout(900)
def test_offline_install_into_a_root(wheelhouse: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    before = _build_leftovers()
    result = _offline("install", "--root", root, "--wheelhouse", wheelhouse)
    assert result.returncode == 0, result.stdout + result.stderr
    # pip built a copy: nothing (root-owned, under sudo) was left in the checkout.
    assert _build_leftovers() == before
    assert "--no-index --find-links" in result.stdout
    venv = root / "opt" / "smscmd"
    version = _run(venv / "bin" / "smscmd", "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("smscmd "), version.stdout
    # The virtualenv is the distribution's Python's, not whichever ran the tests.
    assert f"home = {SYSTEM_PYTHON.parent}" in (venv / "pyvenv.cfg").read_text()
    link = root / "usr" / "local" / "bin" / "smscmd"
    assert os.readlink(link) == "/opt/smscmd/bin/smscmd"
    config = root / "etc" / "smscmd"
    # As the unit says, or systemd warns at every start.
    unit_text = (HARDWARE / "systemd" / "smscmd.service").read_text()
    assert f"ConfigurationDirectoryMode=0{_mode(config):o}\n" in unit_text
    assert _mode(config / "agent.toml") == 0o640
    assert (config / "agent.toml").read_text() == (HARDWARE / "agent.toml.example").read_text()
    unit = root / "etc" / "systemd" / "system" / "smscmd.service"
    assert unit.read_text() == (HARDWARE / "systemd" / "smscmd.service").read_text()
    assert _mode(unit) == 0o644
    rules = root / "etc" / "udev" / "rules.d" / "99-smscmd.rules"
    assert rules.read_text() == (HARDWARE / "udev" / "99-smscmd.rules").read_text()
    # uninstall takes the virtualenv and the link away, and keeps the configuration.
    gone = _run("bash", INSTALL, "uninstall", "--root", root)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert not venv.exists()
    assert not link.is_symlink()
    assert (config / "agent.toml").exists()
    assert not unit.exists()


def _build_leftovers() -> dict[str, float]:
    """What a pip build in place writes into the checkout, with modification times."""
    paths = [ROOT / "build", *ROOT.glob("*.egg-info")]
    return {p.name: p.stat().st_mtime for p in paths if p.exists()}


@pytest.mark.timeout(900)
def test_offline_install_fails_clearly_without_the_wheels(wheelhouse: Path, tmp_path: Path) -> None:
    thin = tmp_path / "thin"
    thin.mkdir()
    for wheel in wheelhouse.glob("*.whl"):
        if not wheel.name.startswith("aiohttp-"):
            shutil.copy(wheel, thin)
    result = _offline("install", "--root", tmp_path / "root", "--wheelhouse", thin)
    assert result.returncode == 1
    assert "the wheelhouse lacks a wheel for this machine" in result.stderr


@pytest.mark.timeout(600)
def test_wheelhouse_for_another_platform(tmp_path: Path) -> None:
    """--platform/--python-version: binary wheels for a 64-bit Raspberry Pi OS gateway."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 (install.sh's default)")
    target = tmp_path / "arm64"
    result = _run("bash", INSTALL, "wheelhouse", target, "--platform", "manylinux2014_aarch64",
                  "--python-version", "3.11", timeout=500)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    compiled = [p.name for p in target.glob("*.whl") if "-none-any" not in p.name]
    assert any(name.startswith("aiohttp-") for name in compiled), compiled
    assert compiled and all("aarch64" in name for name in compiled), compiled
    assert "smscmd" in _names(target)
    assert "setuptools" in _names(target)
