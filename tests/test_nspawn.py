"""The unit under a real systemd: Debian 12 booted with ``systemd-nspawn`` (see
:mod:`systemd.container`), the project installed there by its own
``hardware/install.sh install --wheelhouse`` (offline, from a wheelhouse that
``install.sh wheelhouse`` builds on the host; the checkout is bound in read-only),
hostsim inside on a ``root:dialout 0660`` pty (:mod:`systemd.gateway`).

One container for the module (booted once, from a clean overlay of the cached tree
that ``tests/systemd/rootfs`` builds); the tier's tests are in one xdist group, so
one worker runs them in order and one container is up at a time. The checks, against
systemd 252: no warning from systemd about the unit; the unit becomes active and its
STATUS says the modem is ready; a command through hostsim's API is answered;
``systemctl reload`` and SIGHUP keep the MainPID and apply a changed configuration;
an operator in the ``smscmd`` group runs ``smscmd status`` and ``smscmd journal``;
``systemd-analyze security`` exposure; the agent leaves ssl out (no IP socket under
the unit: device/tls.py) and loads it with the network drop-in; a frozen agent
(SIGSTOP) is restarted by the watchdog and answers again; a handler reaches a listener
on the container's loopback with ``install.sh --handlers-network``'s drop-in and fails
without it (the exposure with it is printed); ``[metrics]``: ``listen`` answers with
``--agent-network``, the textfile is written into node_exporter's directory with
``--metrics-textfile`` alone (refused, read-only, without it).

Test-only differences from a gateway: a short ``WatchdogSec``/``RestartSec`` in the
drop-in :data:`DROP_IN` (the freeze is caught in seconds, not a minute). The modem is
a pty (char-pts, which ``DeviceAllow=`` does not list) and no drop-in allows it: this
systemd runs on the host's cgroup v1 hierarchy ("System is tainted: cgroupsv1") with
no devices controller delegated to the container, so ``DevicePolicy=``/``DeviceAllow=``
cannot be enforced here and systemd says nothing of it; that part of the sandbox is
not proven by this tier. The container has a loopback of its own
(``--private-network``), as a gateway has: hostsim's API is asked from inside.

Needs root, ``systemd-nspawn`` and ``debootstrap`` (``bash tests/systemd/install``)
and, for the first build of the tree and for the wheelhouse, the network. Where one is
missing the tier is skipped with the reason; with ``CI=true`` it fails instead.
Skip it locally with ``-m 'not systemd'``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from systemd.container import booted, poll
from systemd.gateway import (
    REPO,
    SRC,
    UNIT,
    WAIT,
    WHEELHOUSE,
    Gateway,
    no_systemd_warnings,
    rootfs,
    start_hostsim,
    wheelhouse,
)

pytestmark = [pytest.mark.systemd, pytest.mark.xdist_group("systemd"), pytest.mark.timeout(600)]

#: The documented exposure of the unit (hardware/README.md, `systemd-analyze security`).
EXPOSURE = 0.4

#: Test-only: a frozen agent is caught after 4 s instead of 60 s and restarted after
#: 1 s instead of 5 s; nothing else of the unit is changed.
DROP_IN = """\
[Service]
WatchdogSec=4
RestartSec=1
"""
ECHO = '[handlers."echo"]\nargv = ["/bin/echo"]\n'
ECHO_V2 = '[handlers."echo"]\nargv = ["/bin/echo", "v2"]\n'
OPERATOR = "gwadmin"
#: install.sh --handlers-network's drop-in.
NETWORK_DROP_IN = "/etc/systemd/system/smscmd.service.d/handlers-network.conf"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tree = rootfs()
    work = tmp_path_factory.mktemp("nspawn")
    wheels = wheelhouse(tmp_path_factory)
    with booted(tree, work, binds=[(REPO, SRC), (wheels, WHEELHOUSE)]) as box:
        box.run([f"{SRC}/hardware/install.sh", "install", "--wheelhouse", WHEELHOUSE],
                timeout=300)  # fmt: skip
        api, pty = start_hostsim(box, "/opt/smscmd/bin/hostsim")
        gateway = Gateway(box, api, pty)
        gateway.config()
        box.write("/etc/systemd/system/smscmd.service.d/test.conf", DROP_IN)
        box.run(["systemctl", "daemon-reload"])
        box.run(["systemctl", "enable", "--now", "smscmd"], timeout=WAIT)
        box.run(["useradd", "--create-home", "--groups", "smscmd", OPERATOR])
        yield gateway


def reloads(gateway: Gateway) -> int:
    """How many reloads the agent has begun (its log line, in the unit's journal)."""
    out = gateway.box.run(["journalctl", "-u", UNIT, "--no-pager", "-o", "cat"]).stdout
    return out.count("SIGHUP received; reloading the configuration")


def test_systemd_warns_of_nothing_in_the_unit(gateway: Gateway) -> None:
    """systemd 252 parses and starts the unit as installed without a word: no unknown
    key, no ignored or deprecated setting, no sandboxing step skipped (the messages
    since boot, which cover the daemon-reload that loaded it, and
    ``systemd-analyze verify``)."""
    gateway.ready()
    no_systemd_warnings(gateway)


def test_unit_active_with_the_modem_ready(gateway: Gateway) -> None:
    text = gateway.ready()
    assert text.startswith(f"modem ready on {gateway.port}"), text
    assert gateway.box.show(UNIT, "SubState") == "running"
    assert gateway.box.show(UNIT, "NRestarts") == "0"


def test_a_command_through_the_api_is_answered(gateway: Gateway) -> None:
    gateway.ready()
    assert gateway.api.ask("ping: nspawn") == "pong: nspawn"


def test_systemctl_reload_applies_a_new_handler_in_the_same_process(gateway: Gateway) -> None:
    gateway.ready()
    assert gateway.api.ask("echo: one") == "error: unknown command 'echo'"
    pid, before = gateway.main_pid(), reloads(gateway)
    gateway.config(ECHO)
    gateway.box.run(["systemctl", "reload", "smscmd"], timeout=WAIT)
    poll("the agent's reload", lambda: reloads(gateway) > before, WAIT)
    gateway.ready()
    assert gateway.api.ask("echo: one") == "one"
    assert gateway.main_pid() == pid


def test_sighup_applies_a_changed_handler_in_the_same_process(gateway: Gateway) -> None:
    gateway.ready()
    gateway.config(ECHO)
    pid, before = gateway.main_pid(), reloads(gateway)
    gateway.config(ECHO_V2)
    gateway.box.run(["systemctl", "kill", "--kill-who=main", "-s", "HUP", "smscmd"])
    poll("the agent's reload", lambda: reloads(gateway) > before, WAIT)
    gateway.ready()
    assert gateway.api.ask("echo: two") == "v2 two"
    assert gateway.main_pid() == pid


def test_an_operator_in_the_group_runs_status(gateway: Gateway) -> None:
    """``smscmd status`` as a user in the ``smscmd`` group (no root): the control socket
    (/run/smscmd, 0750 smscmd:smscmd; the socket 0660) is the group's."""
    gateway.ready()
    status = gateway.box.run(["smscmd", "status"], user=OPERATOR, check=False)
    assert status.returncode == 0, status.stderr
    assert "ready" in status.stdout, status.stdout


def test_an_operator_in_the_group_reads_the_journal(gateway: Gateway) -> None:
    """``smscmd journal`` as a user in the ``smscmd`` group, beside the running agent:
    the journal (/var/lib/smscmd) is the group's to read."""
    gateway.ready()
    gateway.api.ask("ping: for the journal")
    journal = gateway.box.run(["smscmd", "journal"], user=OPERATOR, check=False)
    assert journal.returncode == 0, journal.stderr
    assert "ping: for the journal" in journal.stdout, journal.stdout


def test_exposure_is_as_documented(gateway: Gateway) -> None:
    assert gateway.exposure() <= EXPOSURE


def mapped(gateway: Gateway, library: str) -> bool:
    """Whether the agent's process has ``library`` (a file name part) mapped."""
    maps = gateway.box.run(["cat", f"/proc/{gateway.main_pid()}/maps"]).stdout
    return library in maps


def test_the_agent_under_the_unit_leaves_ssl_out(gateway: Gateway) -> None:
    """The unit allows no IP socket (``RestrictAddressFamilies=AF_UNIX``), so no TLS
    could be made: device/tls.py keeps ssl (libssl, libcrypto) out of the agent, and
    its start-up line says why; with the network drop-in it is loaded (the test after
    this one). In PDU mode libcrypto stays out too (device/deferred.py: construct's
    hashlib is not loaded). The agent's resident memory in each mode is printed."""

    def rss() -> str:
        status = gateway.box.run(["cat", f"/proc/{gateway.main_pid()}/status"]).stdout
        return next(line for line in status.splitlines() if line.startswith("VmRSS"))

    gateway.ready()
    assert gateway.api.ask("ping: tls") == "pong: tls"
    assert not mapped(gateway, "libssl")
    log = gateway.box.run(["journalctl", "-u", UNIT, "--no-pager", "-o", "cat"]).stdout
    assert "TLS: ssl not loaded (no IP socket can be opened here)" in log
    print(f"text mode {rss()}", end="; ")
    gateway.config('mode = "pdu"\n')
    try:
        gateway.box.run(["systemctl", "restart", "smscmd"], timeout=WAIT)
        gateway.ready()
        assert gateway.api.ask("ping: pdu") == "pong: pdu"
        assert not mapped(gateway, "libcrypto")
        print(f"PDU mode {rss()}", end=" ")
    finally:  # back to the configuration of the tests after this one
        gateway.config()
        gateway.box.run(["systemctl", "restart", "smscmd"], timeout=WAIT)


def test_a_frozen_agent_is_restarted_by_the_watchdog(gateway: Gateway) -> None:
    """SIGSTOP: no more WATCHDOG=1; after WatchdogSec systemd aborts it (SIGABRT, with
    SIGCONT), Restart=on-failure starts a new one, which answers."""
    gateway.ready()
    pid = gateway.main_pid()
    gateway.box.run(["kill", "-STOP", str(pid)])
    poll("a new agent", lambda: gateway.main_pid() not in (0, pid), 60, interval=0.2)
    gateway.ready(60)
    assert gateway.box.show(UNIT, "NRestarts") == "1"
    assert any("Watchdog timeout" in m for m in gateway.systemd_messages())
    assert gateway.api.ask("ping: after the watchdog") == "pong: after the watchdog"


#: A handler that fetches a page from the container's loopback and answers with it.
FETCH = """\
#!/usr/bin/python3
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
    print(response.read().decode().strip())
"""
FETCH_PATH = "/usr/local/lib/smscmd/handlers/fetch"
FETCH_HANDLER = f'[handlers."fetch"]\nargv = ["{FETCH_PATH}"]\ntimeout = 10.0\n'
#: Where the loopback listener serves (the container's own network namespace).
LISTENER = "http://127.0.0.1:8099/hello.txt"


def test_a_handler_reaches_the_loopback_only_with_the_network_drop_in(gateway: Gateway) -> None:
    """Without the drop-in the handler shares the agent's sandbox (no AF_INET, a
    network namespace of its own) and fails; ``install.sh --handlers-network`` gives it
    the host's network: the listener on the container's loopback answers. The exposure
    with the drop-in is printed (the cost hardware/README.md documents)."""
    box = gateway.box
    box.write("/srv/www/hello.txt", "hello from the loopback\n")
    box.run(["systemd-run", "--unit=listener", "--", "python3", "-m", "http.server",
             "--bind", "127.0.0.1", "--directory", "/srv/www", "8099"])  # fmt: skip
    poll("the loopback listener",
         lambda: box.run(["python3", "-c", FETCH, LISTENER], check=False).returncode == 0,
         WAIT)  # fmt: skip
    box.write(FETCH_PATH, FETCH, 0o755)
    gateway.ready()
    gateway.config(FETCH_HANDLER)
    box.run(["systemctl", "reload", "smscmd"], timeout=WAIT)
    gateway.ready()
    assert gateway.api.ask(f"fetch: {LISTENER}") == "error: fetch exited with status 1"
    box.run([f"{SRC}/hardware/install.sh", "install", "--wheelhouse", WHEELHOUSE,
             "--handlers-network"], timeout=300)  # fmt: skip
    try:
        box.run(["systemctl", "restart", "smscmd"], timeout=WAIT)
        gateway.ready()
        assert gateway.api.ask(f"fetch: {LISTENER}") == "hello from the loopback"
        assert mapped(gateway, "libssl")  # IP sockets open: TLS for plug-ins, as before
        print(f"with {NETWORK_DROP_IN}:", end=" ")
        assert gateway.exposure() > EXPOSURE
    finally:  # back to the unit as shipped, for the tests after this one
        box.run(["rm", "-f", NETWORK_DROP_IN])
        box.run(["systemctl", "daemon-reload"])
        box.run(["systemctl", "restart", "smscmd"], timeout=WAIT)



#: install.sh --agent-network's drop-in.
AGENT_DROP_IN = "/etc/systemd/system/smscmd.service.d/agent-network.conf"
#: A handler that connects to HOST:PORT and answers "connected" or the errno's name.
CONNECT = """\
#!/usr/bin/python3
import errno, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
try:
    socket.create_connection((host, int(port)), timeout=5).close()
    print("connected")
except OSError as exc:
    print(errno.errorcode.get(exc.errno, str(exc)))
"""
CONNECT_PATH = "/usr/local/lib/smscmd/handlers/connect"
CONNECT_HANDLER = f'[handlers."connect"]\nargv = ["{CONNECT_PATH}"]\ntimeout = 10.0\n'
#: An address outside the container (which has a loopback only: no route to it).
OTHER = "192.0.2.1"


def test_agent_network_opens_loopback_and_the_named_host_only(gateway: Gateway) -> None:
    """``install.sh --agent-network``: the agent (and a handler, in its sandbox) reaches
    a listener on the loopback, by address and by name; ssl is loaded (IP sockets may
    be opened: device/tls.py), so mqtts:// can be made. The exposure with each is
    printed (hardware/README.md quotes them).

    Where systemd enforces ``IPAddressDeny=`` (BPF on the cgroup v2 hierarchy), a
    connection to another address is refused by it (EPERM, before any routing) and
    ``--agent-network 192.0.2.1`` lets that address through to the kernel's routing
    (ENETUNREACH: the container has no route). A transient unit with
    ``IPAddressDeny=any`` tells which: on this host's cgroup v1 the filter is not
    enforced (ENETUNREACH both times) and that part is not proven by this tier,
    only by the drop-in's settings (tests/test_agent_network.py)."""
    box = gateway.box
    # Debian's installer writes this; a minbase tree has no /etc/hosts (then "localhost"
    # would be asked of the DNS, which the sandbox does not reach).
    box.write("/etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
    box.write("/srv/www2/hello.txt", "hello\n")
    box.run(["systemd-run", "--unit=listener-agent", "--", "python3", "-m", "http.server",
             "--bind", "127.0.0.1", "--directory", "/srv/www2", "8098"])  # fmt: skip
    box.write(CONNECT_PATH, CONNECT, 0o755)
    poll("the loopback listener",
         lambda: box.run([CONNECT_PATH, "127.0.0.1:8098"]).stdout.strip() == "connected",
         WAIT)  # fmt: skip
    probe = box.run(["systemd-run", "--wait", "--pipe", "--quiet", "-p", "IPAddressDeny=any",
                     CONNECT_PATH, f"{OTHER}:8098"]).stdout.strip()  # fmt: skip
    denied = "EPERM" if probe == "EPERM" else "ENETUNREACH"
    print(f"IPAddressDeny= enforced here: {probe == 'EPERM'} ({probe})")
    gateway.ready()
    gateway.config(CONNECT_HANDLER)
    box.run(["systemctl", "reload", "smscmd"], timeout=WAIT)
    gateway.ready()
    assert gateway.api.ask("connect: 127.0.0.1:8098") == "EAFNOSUPPORT"  # AF_UNIX only
    install = [f"{SRC}/hardware/install.sh", "install", "--wheelhouse", WHEELHOUSE]
    try:
        box.run([*install, "--agent-network"], timeout=300)
        box.run(["systemctl", "restart", "smscmd"], timeout=WAIT)
        gateway.ready()
        assert gateway.api.ask("connect: 127.0.0.1:8098") == "connected"
        assert gateway.api.ask("connect: localhost:8098") == "connected"
        assert gateway.api.ask(f"connect: {OTHER}:8098") == denied
        assert mapped(gateway, "libssl")
        print(f"with {AGENT_DROP_IN}:", end=" ")
        assert gateway.exposure() > EXPOSURE
        box.run([*install, "--agent-network", OTHER], timeout=300)
        box.run(["systemctl", "restart", "smscmd"], timeout=WAIT)
        gateway.ready()
        assert gateway.api.ask(f"connect: {OTHER}:8098") == "ENETUNREACH"
        assert gateway.api.ask("connect: 127.0.0.1:8098") == "connected"
        print(f"with {AGENT_DROP_IN} and {OTHER}:", end=" ")
        gateway.exposure()
    finally:
        box.run([*install, "--no-agent-network"], timeout=300)
        box.run(["systemctl", "restart", "smscmd"], timeout=WAIT)


#: [metrics] under the unit: the textfile in Debian's node_exporter directory, the port
#: on loopback (interval 1 s: the file follows within a second or two).
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
METRICS = (
    f'[metrics]\ntextfile_directory = "{TEXTFILE_DIR}"\ninterval = 1.0\n'
    'listen = "127.0.0.1:9101"\n'
)
TEXTFILE_ONLY = f'[metrics]\ntextfile_directory = "{TEXTFILE_DIR}"\ninterval = 1.0\n'
SCRAPE = """
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:9101/metrics", timeout=10) as answer:
    sys.stdout.write(answer.read().decode())
"""


def test_metrics_textfile_and_listen_under_the_unit(
    gateway: Gateway, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """README "Metrics" under the real unit: prometheus_client pip-installed into the
    agent's virtualenv (offline, a wheel the host downloaded), ``[metrics]`` with a
    textfile and ``listen``. With ``--agent-network`` only, the port answers but the
    write is refused (``ProtectSystem=strict``: read-only file system, logged once);
    ``--metrics-textfile`` without the network then lets it write there
    (``smscmd_commands_done_total`` of a command answered meanwhile, mode 0644 for
    node_exporter's user), ssl let in after all (prometheus_client imports it), and the
    exposure stays as shipped. Each exposure is printed."""
    box = gateway.box
    wheels = wheelhouse(tmp_path_factory)  # bound in at WHEELHOUSE
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "-d", str(wheels), "prometheus_client>=0.20"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if download.returncode != 0:
        pytest.skip(f"pip download prometheus_client failed: {download.stderr[-500:]}")
    install = [f"{SRC}/hardware/install.sh", "install", "--wheelhouse", WHEELHOUSE]
    box.write("/etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
    box.run(["install", "-d", "-m", "0777", TEXTFILE_DIR])  # only the sandbox refuses
    try:
        box.run([*install, "--agent-network"], timeout=300)
        box.run(["/opt/smscmd/bin/pip", "install", "--no-index", "--find-links", WHEELHOUSE,
                 "prometheus_client"], timeout=120)  # fmt: skip
        gateway.config(METRICS)
        box.run(["systemctl", "restart", "smscmd"], timeout=WAIT)
        gateway.ready()
        scraped = poll("the metrics port",
                       lambda: box.run(["python3", "-c", SCRAPE], check=False).stdout, WAIT)
        assert 'smscmd_modem_state{agent="agent",smscmd_modem_state="ready"} 1.0' in scraped
        log = gateway.box.run(["journalctl", "-u", UNIT, "--no-pager", "-o", "cat"]).stdout
        assert "Read-only file system" in log and "metrics: cannot write" in log
        print("with agent-network.conf:", end=" ")
        gateway.exposure()
        # The textfile alone needs no network: the unit's AF_UNIX only, ssl let in.
        box.run([*install, "--no-agent-network", "--metrics-textfile"], timeout=300)
        gateway.config(TEXTFILE_ONLY)
        box.run(["systemctl", "restart", "smscmd"], timeout=WAIT)
        gateway.ready()
        log = gateway.box.run(["journalctl", "-u", UNIT, "--no-pager", "-o", "cat"]).stdout
        assert "TLS: ssl loaded after all ([metrics]" in log
        assert gateway.api.ask("ping: metrics") == "pong: metrics"
        prom = f"{TEXTFILE_DIR}/smscmd.prom"
        poll("the textfile with the command",
             lambda: 'smscmd_commands_done_total{agent="agent"} 1.0' in box.run(
                 ["cat", prom], check=False).stdout, WAIT)  # fmt: skip
        assert box.run(["stat", "-c", "%a %U", prom]).stdout.split() == ["644", "smscmd"]
        print("with metrics-textfile.conf:", end=" ")
        assert gateway.exposure() == EXPOSURE
    finally:
        gateway.config()
        box.run([*install, "--no-agent-network", "--no-metrics-textfile"], timeout=300)
        box.run(["systemctl", "restart", "smscmd"], timeout=WAIT)
