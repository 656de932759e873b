"""install.sh's privileged actions and template instances under a real systemd (Debian 12
booted with ``systemd-nspawn``, :mod:`systemd.container`), installed offline with
``hardware/install.sh install --wheelhouse --action ...``.

A handler inside the agent's sandbox (user smscmd, ``NoNewPrivileges``, ``PrivateUsers``,
``ProtectSystem=strict``) requests an action through ``request-action``; systemd's path
unit starts the root oneshot that runs the action's script: proved with an action of the
operator's own that records who ran it, and with the shipped ``reboot``, whose timer is
stopped before it fires. An action without an enabled path unit does nothing, whatever
file the agent's user creates. Then the plain unit stops and ``smscmd@modem2`` takes the
modem, with its own configuration, journal and socket, and ``smscmd status --config``
finds it. Same tier, marker and group as tests/test_nspawn_deb.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from systemd.container import ContainerError, booted, poll
from systemd.gateway import REPO, SRC, WAIT, WHEELHOUSE, Gateway, rootfs, start_hostsim, wheelhouse

pytestmark = [pytest.mark.systemd, pytest.mark.xdist_group("systemd"), pytest.mark.timeout(600)]

INSTALL = f"{SRC}/hardware/install.sh"
#: An action of the operator's own: root's script, writing who ran it where only root may.
#: (Not in /root: the action unit has ProtectHome=yes.)
MARK_ACTION = "#!/bin/sh\nid -u >/var/lib/smscmd-mark\n"
HANDLERS = """
[handlers."mark"]
argv = ["/usr/local/lib/smscmd/handlers/request-action", "mark"]

[handlers."sneak"]
argv = ["/usr/local/lib/smscmd/handlers/request-action", "sneak"]
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tree = rootfs()
    work = tmp_path_factory.mktemp("nspawn-install")
    wheels = wheelhouse(tmp_path_factory)
    with booted(tree, work, binds=[(REPO, SRC), (wheels, WHEELHOUSE)]) as box:
        box.write("/etc/smscmd/actions/mark", MARK_ACTION, 0o755)
        box.run([INSTALL, "install", "--wheelhouse", WHEELHOUSE, "--action", "mark"],
                timeout=300)  # fmt: skip
        api, pty = start_hostsim(box, "/opt/smscmd/bin/hostsim")
        gateway = Gateway(box, api, pty)
        gateway.config(HANDLERS)
        box.run(["systemctl", "enable", "--now", "smscmd"], timeout=WAIT)
        yield gateway


def test_a_handler_requests_an_action_that_root_runs(gateway: Gateway) -> None:
    box = gateway.box
    gateway.ready()
    assert box.show("smscmd-action@mark.path", "ActiveState") == "active"
    assert gateway.api.ask("mark: please") == "mark: requested"
    mark = box.path("/var/lib/smscmd-mark")
    try:
        poll("the action's mark", lambda: mark.exists() and mark.read_text() == "0\n", WAIT)
    except ContainerError:
        print(box.run(["journalctl", "-b", "--no-pager", "-u", "smscmd-action@mark.*"]).stdout)
        raise
    # The request was consumed; the action unit ran once and succeeded.
    assert not box.path("/run/smscmd-actions/mark").exists()
    assert box.show("smscmd-action@mark.service", "Result") == "success"
    # The request directory is the agent user's alone.
    assert box.sh("stat -c '%U:%G %a' /run/smscmd-actions").strip() == "smscmd:smscmd 700"


def test_an_action_without_its_path_unit_never_runs(gateway: Gateway) -> None:
    """The handler refuses an action that is not installed; a file the agent's user
    creates under another name starts nothing: only enabled path units watch, and a
    later request of an enabled action leaves that file alone."""
    box = gateway.box
    gateway.ready()
    assert gateway.api.ask("sneak") == "error: sneak exited with status 1"
    box.run(["runuser", "-u", "smscmd", "--", "touch", "/run/smscmd-actions/sneak"])
    watching = box.run(["systemctl", "list-units", "--plain", "--no-legend", "--all",
                        "smscmd-action@*.path"]).stdout  # fmt: skip
    assert [line.split()[0] for line in watching.splitlines()] == ["smscmd-action@mark.path"]
    mark = box.path("/var/lib/smscmd-mark")
    mark.unlink(missing_ok=True)
    assert gateway.api.ask("mark: again") == "mark: requested"
    poll("the action's mark", mark.exists, WAIT)
    assert box.path("/run/smscmd-actions/sneak").exists()
    assert box.show("smscmd-action@sneak.service", "ActiveState") == "inactive"


def test_the_reboot_action_schedules_a_reboot_in_a_minute(gateway: Gateway) -> None:
    """actions/reboot as installed, run by its unit with ``systemctl reboot`` left to
    a timer: the timer is there, and a second request changes nothing."""
    box = gateway.box
    box.run([INSTALL, "install", "--wheelhouse", WHEELHOUSE, "--action", "reboot"], timeout=300)
    assert box.show("smscmd-action@reboot.path", "ActiveState") == "active"
    try:
        box.run(["runuser", "-u", "smscmd", "--", "touch", "/run/smscmd-actions/reboot"])
        poll("smscmd-reboot.timer",
             lambda: box.show("smscmd-reboot.timer", "ActiveState") == "active", WAIT)  # fmt: skip
        poll("the request consumed",
             lambda: not box.path("/run/smscmd-actions/reboot").exists(), WAIT)  # fmt: skip
        left = box.show("smscmd-reboot.timer", "NextElapseUSecMonotonic")
        assert left, "the timer has no elapse time"
    finally:
        box.run(["systemctl", "stop", "smscmd-reboot.timer"], check=False)
    assert box.show("smscmd-reboot.timer", "ActiveState") == "inactive"


def test_an_instance_has_its_own_config_journal_and_socket(gateway: Gateway) -> None:
    box = gateway.box
    box.run(["systemctl", "disable", "--now", "smscmd"], timeout=WAIT)
    box.run([INSTALL, "install", "--wheelhouse", WHEELHOUSE, "--instance", "modem2",
             "--port", gateway.port], timeout=300)  # fmt: skip
    box.run(["systemctl", "enable", "--now", "smscmd@modem2"], timeout=WAIT)
    unit = "smscmd@modem2.service"

    def ready() -> bool:
        return box.show(unit, "ActiveState") == "active" and box.show(
            unit, "StatusText"
        ).startswith("modem ready")

    poll(f"{unit} ready", ready, WAIT)
    assert box.path("/run/smscmd@modem2/control.sock").is_socket()
    assert box.path("/var/lib/smscmd/modem2/journal.sqlite3").exists()
    status = box.run(["smscmd", "status", "--json", "--config", "/etc/smscmd/modem2.toml"])
    assert json.loads(status.stdout)["port"] == gateway.port
    assert gateway.api.ask("ping: modem2") == "pong: modem2"
