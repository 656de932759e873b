"""The gateway package (``hardware/deb/build``): its control fields, its files (modes,
owners, no simulator, no tests), the unit and conffile made from ``hardware/``, the
packaged ``smscmd`` run with Debian's own python3 and python3-* packages (against
hostsim's modem too), lintian, and apt resolving its dependencies from the Debian 12
archive.

Debian tools and packages the tests need are installed by ``tests/deb/install`` (run by
``.ci/run``); without them a test is skipped with the reason, and fails in CI.
Sources: Debian Policy §5.3 (binary control files), §10.7.3 (conffiles), §12.1 (manual
pages); the Debian Python Policy §3.2 (private modules in /usr/share/<package>); the
deb(5), deb-conffiles(5) and dpkg-deb(1) manuals.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest
from conftest import communicate
from debpkg import REPO, build_deb, require, require_packages

from device.cli import build_parser, main
from device.sms.charset import Charset
from hostsim.sim import HostSim

HARDWARE = REPO / "hardware"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
#: pyproject's runtime dependencies and the Debian 12 packages that provide them;
#: aiohttp is hostsim's and the demo's alone.
DEBIAN_NAMES = {
    "pyserial": "python3-serial",
    "pyserial-asyncio": "python3-serial-asyncio",
    "transitions": "python3-transitions",
    "construct": "python3-construct",
}
NOT_PACKAGED = {"aiohttp"}
DEBIAN_PYTHON = "/usr/bin/python3"
#: The unit files of hardware/systemd/ (what build installs into /lib/systemd/system).
UNIT_SUFFIXES = (".service", ".path", ".socket", ".timer")


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("dpkg-deb")
    return build_deb(tmp_path_factory.mktemp("deb"))


@pytest.fixture(scope="module")
def tree(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's files, unpacked (``dpkg-deb -x``)."""
    root = tmp_path_factory.mktemp("tree")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def members(deb: Path) -> dict[str, tarfile.TarInfo]:
    """The data archive's members by path (``./usr/bin/smscmd`` → ``usr/bin/smscmd``)."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True,
                          check=True).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {
            m.name.removeprefix("./").rstrip("/"): m for m in tar.getmembers() if m.name != "./"
        }


def control_file(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "--info", str(deb), name], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip


def test_file_name_and_control_fields(deb: Path) -> None:
    assert deb.name == f"smscmd_{VERSION}_all.deb"
    assert field(deb, "Package") == "smscmd"
    assert field(deb, "Version") == VERSION
    # Pure Python: the one .deb serves arm64, armhf (Raspberry Pi OS) and amd64.
    assert field(deb, "Architecture") == "all"
    assert re.fullmatch(r"[^<>]+ <[^<>@ ]+@[^<>@ ]+>", field(deb, "Maintainer"))
    installed_kib = int(field(deb, "Installed-Size"))
    payload = sum(m.size for m in members(deb).values())
    assert payload / 1024 <= installed_kib < payload / 1024 + 200


def test_depends_on_the_debian_packages_of_every_runtime_dependency(deb: Path) -> None:
    """Each pyproject dependency but aiohttp is a Debian package with at least its minimum."""
    depends = dict(
        re.fullmatch(r"(\S+)(?: \(>= (\S+)\))?", item.strip()).groups()  # type: ignore[union-attr]
        for item in field(deb, "Depends").split(",")
    )
    wanted = {}
    for requirement in PYPROJECT["project"]["dependencies"]:
        name, minimum = re.fullmatch(r"([A-Za-z0-9_.-]+)>=(\S+)", requirement).groups()  # type: ignore[union-attr]
        if name in NOT_PACKAGED:
            continue
        assert name in DEBIAN_NAMES, f"{name}: which Debian package provides it?"
        wanted[DEBIAN_NAMES[name]] = minimum
    for package, minimum in wanted.items():
        assert depends.get(package) == minimum, f"Depends: {package} (>= {minimum})"
    python_minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert depends["python3"] == python_minimum
    assert "adduser" in depends  # postinst runs adduser (lintian: maintainer-script-needs-...)
    assert set(depends) == {*wanted, "python3", "adduser"}


def test_files_owners_and_modes(deb: Path) -> None:
    files = members(deb)
    assert all(m.uname == "root" and m.gname == "root" for m in files.values())
    executables = {"usr/bin/smscmd"} | {
        f"usr/share/smscmd/{p.parent.name}/{p.name}"
        for p in (*(HARDWARE / "handlers").iterdir(), *(HARDWARE / "actions").iterdir())
    }
    for path, member in files.items():
        mode = member.mode & 0o7777
        if member.isdir():
            assert mode == 0o755, path
        else:
            assert member.isfile(), path
            assert mode == (0o755 if path in executables else 0o644), (path, oct(mode))
    assert {p for p in executables if p in files} == executables


def test_carries_the_agent_alone(deb: Path) -> None:
    """The device package, every module of it, in the private directory; nothing else."""
    files = members(deb)
    for path in files:
        assert "hostsim" not in path and "tests" not in path.split("/"), path
        assert "__pycache__" not in path and not path.endswith(".pyc"), path
        assert not path.startswith(("usr/lib/python3", "usr/local", "opt")), path
    packaged = {p.removeprefix("usr/share/smscmd/") for p in files
                if p.startswith("usr/share/smscmd/device/") and p.endswith(".py")}  # fmt: skip
    source = {str(p.relative_to(REPO)) for p in (REPO / "device").rglob("*.py")
              if "__pycache__" not in p.parts}  # fmt: skip
    assert packaged == source


def test_every_file_of_hardware_systemd_is_packaged(tree: Path) -> None:
    """Units into /lib/systemd/system; drop-ins and anything else inert in /usr/share."""
    for source in (HARDWARE / "systemd").rglob("*"):
        if not source.is_file():
            continue
        rel = source.relative_to(HARDWARE / "systemd")
        unit = len(rel.parts) == 1 and source.name.endswith(UNIT_SUFFIXES)
        packaged = tree / ("lib/systemd/system" if unit else "usr/share/smscmd/systemd") / rel
        assert packaged.read_text() == source.read_text().replace(
            "/opt/smscmd/bin/", "/usr/bin/"
        ), rel
    assert not list((tree / "lib/systemd/system").glob("*.d")), "no drop-in is active"


@pytest.mark.parametrize(("unit", "config"), [("smscmd.service", "agent.toml"),
                                              ("smscmd@.service", "%i.toml")])  # fmt: skip
def test_units_run_the_packaged_command(tree: Path, unit: str, config: str) -> None:
    text = (tree / "lib/systemd/system" / unit).read_text()
    execs = re.findall(r"^ExecStart=(.*)$", text, re.M)
    assert execs == [f"/usr/bin/smscmd run --config /etc/smscmd/{config}"]
    for path in (tree / "lib/systemd/system").iterdir():
        assert "/opt/smscmd" not in path.read_text(), path.name


def test_tmpfiles_and_action_scripts(tree: Path) -> None:
    """tmpfiles.d active (the actions' request directory at boot), the action scripts
    examples for /etc/smscmd/actions (root's, never the package's)."""
    for conf in (HARDWARE / "tmpfiles.d").iterdir():
        assert (tree / "usr/lib/tmpfiles.d" / conf.name).read_bytes() == conf.read_bytes()
    for action in (HARDWARE / "actions").iterdir():
        packaged = tree / "usr/share/smscmd/actions" / action.name
        assert packaged.read_bytes() == action.read_bytes()
    assert not (tree / "etc/smscmd/actions").exists()


def test_udev_rules_and_handlers_are_the_hardware_files(tree: Path) -> None:
    for rules in (HARDWARE / "udev").glob("*.rules"):
        assert (tree / "lib/udev/rules.d" / rules.name).read_bytes() == rules.read_bytes()
    for handler in (HARDWARE / "handlers").iterdir():
        packaged = tree / "usr/share/smscmd/handlers" / handler.name
        assert packaged.read_bytes() == handler.read_bytes()


def test_configuration_is_the_one_conffile(deb: Path, tree: Path) -> None:
    assert control_file(deb, "conffiles").split() == ["/etc/smscmd/agent.toml"]
    config = (tree / "etc/smscmd/agent.toml").read_text()
    example = (HARDWARE / "agent.toml.example").read_text()
    # The example's pointers into a checkout name the installed places instead.
    assert config == example.replace(
        "hardware/handlers/", "/usr/share/smscmd/handlers/"
    ).replace("hardware/udev/", "/lib/udev/rules.d/")
    assert "hardware/" not in config
    # md5sums covers every file but the conffile (dpkg keeps its own for conffiles).
    sums = dict(line.split("  ", 1)[::-1] for line in control_file(deb, "md5sums").splitlines())
    files = [p for p, m in members(deb).items() if m.isfile()]
    assert set(sums) == {p for p in files if not p.startswith("etc/")}
    for path, digest in sums.items():
        assert hashlib.md5((tree / path).read_bytes()).hexdigest() == digest, path


def test_documentation(tree: Path) -> None:
    doc = tree / "usr/share/doc/smscmd"
    copyright_ = (doc / "copyright").read_text()
    assert "License: Apache-2.0" in copyright_
    assert "/usr/share/common-licenses/Apache-2.0" in copyright_
    assert PYPROJECT["project"]["license"] == "Apache-2.0"  # PEP 639 SPDX expression
    changelog = gzip.decompress((doc / "changelog.gz").read_bytes()).decode()
    assert changelog.startswith(f"smscmd ({VERSION}) ")
    man = gzip.decompress((tree / "usr/share/man/man1/smscmd.1.gz").read_bytes()).decode()
    assert man == (REPO / "hardware/deb/smscmd.1").read_text()


def test_manual_page_names_every_command() -> None:
    """hardware/deb/smscmd.1 keeps up with the parser: one ``.B name`` per command."""
    man = (REPO / "hardware/deb/smscmd.1").read_text()
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands
    for name in commands:
        roff = name.replace("-", "\\-")  # a hyphen is \- in roff
        assert f"\n.B {roff}\n" in man or f"\n.B {roff} " in man, name


def test_version_option_and_a_debian_revision(tmp_path: Path) -> None:
    require("dpkg-deb")
    deb = build_deb(tmp_path, "--version", f"{VERSION}-2")
    assert deb.name == f"smscmd_{VERSION}-2_all.deb"
    assert field(deb, "Version") == f"{VERSION}-2"
    # Not a native version: the changelog is changelog.Debian.gz (Policy §12.7).
    assert "usr/share/doc/smscmd/changelog.Debian.gz" in members(deb)


def test_bad_version_and_maintainer_are_one_line_errors(tmp_path: Path) -> None:
    require("dpkg-deb")
    for args, reason in (
        (["--version", "1 0"], "not a Debian version: 1 0"),
        (["--maintainer", "nobody"], "maintainer must be 'Name <email>': nobody"),
    ):
        with pytest.raises(subprocess.CalledProcessError) as failed:
            build_deb(tmp_path, *args)
        assert failed.value.stderr == f"hardware/deb/build: {reason}\n"
    assert not list(tmp_path.iterdir())


def test_same_checkout_same_bytes(tmp_path: Path) -> None:
    """SOURCE_DATE_EPOCH (the last commit's time by default) fixes every timestamp."""
    require("dpkg-deb")
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    first = build_deb(tmp_path / "a", env=env).read_bytes()
    assert build_deb(tmp_path / "b", env=env).read_bytes() == first


def test_demo_without_hostsim_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "hostsim", None)  # import hostsim: not found
    assert main(["demo"]) == 1
    assert capsys.readouterr().err == (
        "smscmd: the demo needs hostsim, which the gateway package does not carry; "
        "pip install smscmd (in a virtual environment) to try it\n"
    )


def debian_python() -> None:
    """/usr/bin/python3 of Debian 12 and the packages the .deb depends on, or skip / fail."""
    require("dpkg-query")
    require_packages("python3", *DEBIAN_NAMES.values())


def packaged_smscmd(tree: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """The unpacked /usr/bin/smscmd run as on a gateway: its own #! line (python3 -I)."""
    return subprocess.run([str(tree / "usr/bin/smscmd"), *args], capture_output=True,
                          text=True, timeout=60, check=False, **kwargs)  # type: ignore[call-overload]  # fmt: skip


def test_packaged_command_runs_with_debian_python(tree: Path) -> None:
    debian_python()
    assert (tree / "usr/bin/smscmd").read_text().startswith(f"#!{DEBIAN_PYTHON} -I\n")
    version = packaged_smscmd(tree, "--version")
    assert (version.returncode, version.stdout) == (0, f"smscmd {VERSION}\n")
    checked = packaged_smscmd(tree, "check-config", str(tree / "etc/smscmd/agent.toml"))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"{tree}/etc/smscmd/agent.toml: ok")


def test_packaged_command_is_not_shadowed(tree: Path, tmp_path: Path) -> None:
    """-I: PYTHONPATH and the working directory cannot put another ``device`` first."""
    debian_python()
    shadow = tmp_path / "device"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise SystemExit('shadowed')\n")
    result = packaged_smscmd(tree, "--version", cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (0, f"smscmd {VERSION}\n", "")


def test_packaged_modules_import_without_the_simulator(tree: Path) -> None:
    """Every module but the demo and the metrics exporter imports with Debian's packages,
    and none pulls in hostsim or aiohttp; the demo says in one line what is missing. (The
    exporter needs prometheus_client >= 0.20, the optional extra ``metrics``, which the
    package does not carry, bookworm having 0.16: ``smscmd check-config`` and ``run``
    refuse a ``[metrics]`` table without it, device/preflight.py.)"""
    debian_python()
    probe = (
        "import pkgutil, sys, importlib\n"
        f"sys.path.insert(0, {str(tree / 'usr/share/smscmd')!r})\n"
        "import device\n"
        "names = [m.name for m in pkgutil.walk_packages(device.__path__, 'device.')]\n"
        "for name in names:\n"
        "    if name not in ('device.demo', 'device.metrics.exporter'):\n"
        "        importlib.import_module(name)\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "print(len(names), sorted(roots & {'hostsim', 'aiohttp'}))\n"
    )
    result = subprocess.run([DEBIAN_PYTHON, "-I", "-c", probe], capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    # every module and subpackage: each .py file but device/__init__.py itself
    count = len([p for p in (REPO / "device").rglob("*.py") if p != REPO / "device/__init__.py"])
    assert result.stdout == f"{count} []\n"
    demo = packaged_smscmd(tree, "demo")
    assert demo.returncode == 1
    assert demo.stderr == (
        "smscmd: the demo needs hostsim, which the gateway package does not carry; "
        "pip install smscmd (in a virtual environment) to try it\n"
    )


@pytest.mark.parametrize("mode", ["text", "pdu"])
async def test_packaged_agent_answers_a_command(tree: Path, tmp_path: Path, mode: str) -> None:
    """The packaged ``smscmd run`` on Debian's python3-serial-asyncio, -transitions and
    (PDU mode) -construct, against hostsim's modem on a pty: ``ping: 42`` is answered
    ``pong: 42`` and SIGTERM stops it with exit status 0."""
    debian_python()
    async with HostSim() as sim:
        gateway = sim.modems[0]
        log = tmp_path / "agent.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                str(tree / "usr/bin/smscmd"), "run", "--port", gateway.path, "--mode", mode,
                "--journal", str(tmp_path / "journal.sqlite3"),
                "--socket", str(tmp_path / "control.sock"),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        try:
            # Port open and configured: from here every byte the modem writes reaches it.
            await gateway.wait_until(
                lambda m: m.settings.cscs is Charset.UCS2 and m.settings.csdh, 30.0
            )
            gateway.deliver("000", "ping: 42")
            await gateway.wait_until(lambda m: len(m.sent) >= 1, 30.0)
            assert [(s.destination, s.text) for s in gateway.sent] == [("000", "pong: 42")]
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await communicate(proc, 30.0)
        assert proc.returncode == 0, log.read_text()[-4000:]


def test_lintian_clean(deb: Path) -> None:
    """No tag at any level (--pedantic, info, experimental); the two info tags the
    package overrides are explained in hardware/deb/lintian-overrides."""
    lintian = require("lintian")
    result = subprocess.run([lintian, "--pedantic", "--display-info", "--display-experimental",
                             "--fail-on", "error,warning,info,pedantic,experimental",
                             str(deb)], capture_output=True, text=True, timeout=300,
                            check=False)  # fmt: skip
    tags = [line for line in result.stdout.splitlines() if re.match(r"[EWIPXC]: ", line)]
    assert (result.returncode, tags) == (0, [])


def test_apt_resolves_the_dependencies_from_the_archive(deb: Path, tmp_path: Path) -> None:
    """apt install ./smscmd_*.deb, simulated on a system where nothing is installed yet:
    every dependency comes from the configured Debian archive (Debian 12 here)."""
    apt_get = require("apt-get")
    if not list(Path("/var/lib/apt/lists").glob("*_Packages*")):
        pytest.skip("no apt package lists (apt-get update)")
    status = tmp_path / "status"
    status.write_text("")
    result = subprocess.run([apt_get, "install", "--simulate",
                             "-o", f"Dir::State::status={status}", str(deb)],
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    installed = set(re.findall(r"^Inst (\S+) ", result.stdout, re.M))
    assert {"smscmd", "python3", "adduser", *DEBIAN_NAMES.values()} <= installed
