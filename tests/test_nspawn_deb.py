"""The gateway package under a real systemd: ``hardware/deb/build``'s .deb installed
with ``apt install ./smscmd_*.deb`` in a fresh Debian 12 booted with
``systemd-nspawn`` (:mod:`systemd.container`; no project file there before), then
pointed at hostsim's modem by editing agent.toml and ``systemctl reload``: the unit it
ships, enables and starts says the modem is ready, answers a command, and draws no
warning from systemd.

apt resolves the package's dependencies (python3-serial, ... adduser) from the
Debian 12 archive's lists in the cached tree, whose packages ``tests/systemd/rootfs``
downloaded into apt's cache, so the install needs no network (the container has
none but its loopback). The package has no simulator: hostsim runs from a virtual
environment made inside from the wheelhouse that ``install.sh wheelhouse`` builds on
the host. Same tier, marker, group and requirements as ``tests/test_nspawn.py``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from systemd.container import booted
from systemd.gateway import (
    REPO,
    UNIT,
    WAIT,
    WHEELHOUSE,
    Gateway,
    no_systemd_warnings,
    rootfs,
    start_hostsim,
    unavailable,
    wheelhouse,
)

pytestmark = [pytest.mark.systemd, pytest.mark.xdist_group("systemd"), pytest.mark.timeout(600)]

#: Where the built package is seen inside (read-only).
DEBS = "/src/deb"
#: The exposure the installed unit must not exceed (as install.sh's: tests/test_nspawn.py).
EXPOSURE = 0.4


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tree = rootfs()
    work = tmp_path_factory.mktemp("nspawn-deb")
    out = work / "deb"
    out.mkdir()
    built = subprocess.run(
        [str(REPO / "hardware" / "deb" / "build"), "--out", str(out)],
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if built.returncode != 0:
        unavailable(f"hardware/deb/build failed: {built.stderr[-2000:]}")
    deb = built.stdout.strip().rsplit("/", 1)[-1]
    wheels = wheelhouse(tmp_path_factory)
    with booted(tree, work / "box", binds=[(out, DEBS), (wheels, WHEELHOUSE)]) as box:
        # The operator's command; offline: the dependencies are in apt's cache.
        box.sh(f"cd {DEBS} && apt install -y -q ./{deb}", timeout=300)
        box.run(["python3", "-m", "venv", "/opt/hostsim"])
        box.run(["/opt/hostsim/bin/pip", "install", "--quiet", "--no-index",
                 "--find-links", WHEELHOUSE, "smscmd"], timeout=300)  # fmt: skip
        api, pty = start_hostsim(box, "/opt/hostsim/bin/hostsim")
        gateway = Gateway(box, api, pty)
        # As hardware/README says: edit agent.toml, then reload (the package started the
        # agent on /dev/smscmd-at, where it waits for a modem; a new port re-opens).
        gateway.config()
        box.run(["systemctl", "reload", "smscmd"], timeout=WAIT)
        yield gateway


def test_the_package_enables_its_unit(gateway: Gateway) -> None:
    assert gateway.box.show(UNIT, "FragmentPath") == "/lib/systemd/system/smscmd.service"
    assert gateway.box.show(UNIT, "UnitFileState") == "enabled"
    assert "path=/usr/bin/smscmd ;" in gateway.box.show(UNIT, "ExecStart")


def test_the_packaged_agent_is_ready_and_answers(gateway: Gateway) -> None:
    assert gateway.ready().startswith(f"modem ready on {gateway.port}")
    assert gateway.api.ask("ping: from the deb") == "pong: from the deb"


def test_systemd_warns_of_nothing_in_the_packaged_unit(gateway: Gateway) -> None:
    gateway.ready()
    no_systemd_warnings(gateway)


def test_packaged_exposure_is_as_documented(gateway: Gateway) -> None:
    assert gateway.exposure() <= EXPOSURE
