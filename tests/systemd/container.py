"""A Debian 12 booted under a real systemd with ``systemd-nspawn``, for the tier of
``tests/test_nspawn*.py``.

:func:`booted` mounts an overlay whose lower layer is the cached tree that
``tests/systemd/rootfs`` builds (never written: every boot gets a fresh, empty upper
directory, so each session starts from the same clean system) in a mount namespace
of its own (``unshare``: the mount goes with the container, whatever happens), boots
it with
``systemd-nspawn --keep-unit --register=no -b`` (this host has no system bus, so no
machined: no ``machinectl``, no ``systemd-run -M``), and yields a :class:`Container`
that runs commands inside through ``nsenter`` on the container's init (the child of
``systemd-nspawn``). By default the container has a loopback of its own
(``--private-network``): a gateway's loopback, with the capabilities to set up a
unit's ``PrivateNetwork=``; ``network=True`` shares the host's (pip from the index).

On the way out, always: SIGTERM to ``systemd-nspawn`` (the container's systemd powers
off), SIGKILL to it and to the container's init after :data:`STOP_WAIT`; then it is
checked that no process of the container's PID namespace is left and that no mount is
left below the overlay's mount point, and the upper directory is removed. A test
process killed outside its finalizers takes the container with it (``setpriv
--pdeathsig``). Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

#: Bound of the boot: init found, then ``systemctl is-system-running --wait``.
BOOT_WAIT = 90.0
#: Bound of the power-off after SIGTERM, before SIGKILL.
STOP_WAIT = 30.0
#: The environment of every command run inside (nothing of the host's leaks in).
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}


T = TypeVar("T")


class ContainerError(RuntimeError):
    """The container did not boot, or a command inside failed or timed out."""


def poll(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.1) -> T:
    """Call ``check()`` until it returns something truthy (returned), at most ``timeout``
    seconds; then raise :class:`ContainerError` naming ``what``. The pause between
    calls is a polling interval, not a synchronisation: the deadline decides."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise ContainerError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # pid (comm) state ppid ...: comm may hold spaces and parentheses.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def in_namespace(ns: str) -> list[int]:
    """The pids whose PID namespace is ``ns`` (a ``/proc/PID/ns/pid`` link's text)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns" / "pid") == ns:
                    found.append(int(entry.name))
    return found


def mounts_below(path: Path) -> list[str]:
    """Mount points at or below ``path`` in this mount namespace."""
    prefix = str(path)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return points


@dataclass(frozen=True, slots=True)
class Container:
    """A booted container: ``init`` is its PID 1 seen from the host."""

    init: int
    log: Path

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        check: bool = True,
        user: str | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside (as root, or as ``user`` through ``runuser``), bounded by
        ``timeout`` (exit status 124 then). With ``check``, a non-zero status raises
        :class:`ContainerError` with the output."""
        inner = ["runuser", "-u", user, "--", *argv] if user else list(argv)
        # nsenter forks the command into the PID namespace; if nsenter is killed, its
        # child lives on (util-linux 2.38 has no --kill-child): coreutils' timeout
        # inside bounds the command itself, the host's bound is a backstop.
        cmd = ["nsenter", "-t", str(self.init), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w",
               "--", "timeout", "--kill-after=5", str(timeout), *inner]  # fmt: skip
        try:
            done = subprocess.run(
                cmd, check=False, input=stdin, capture_output=True, text=True, env=ENV,
                stdin=None if stdin is not None else subprocess.DEVNULL, timeout=timeout + 10,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise ContainerError(f"timed out after {timeout:.0f} s: {shlex.join(inner)}") from exc
        if check and done.returncode != 0:
            raise ContainerError(
                f"exit {done.returncode}: {shlex.join(inner)}\n"
                f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
            )
        return done

    def sh(self, script: str, **kwargs: object) -> str:
        """``/bin/sh -ec script`` inside; its stdout."""
        return self.run(["/bin/sh", "-ec", script], **kwargs).stdout  # type: ignore[arg-type]

    def path(self, inside: str) -> Path:
        """``inside`` (absolute) as the host reaches it, through the init's root (so also
        below the container's own mounts: /run, /tmp)."""
        return Path(f"/proc/{self.init}/root") / inside.lstrip("/")

    def write(self, inside: str, text: str, mode: int = 0o644) -> None:
        """Write ``text`` to the file ``inside`` (root-owned, ``mode``)."""
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def show(self, unit: str, prop: str) -> str:
        """``systemctl show -p PROP --value UNIT``."""
        return self.run(["systemctl", "show", "-p", prop, "--value", unit]).stdout.strip()


#: ``sh -c`` under unshare: mount the overlay ($1: its options, $2: where), then become
#: systemd-nspawn (the rest of the arguments), keeping the pid.
_OVERLAY_THEN = 'mount -t overlay overlay -o "$1" "$2" && shift 2 && exec "$@"'


def _find_init(nspawn: subprocess.Popen[bytes], log: Path) -> int:
    def init() -> int | None:
        if nspawn.poll() is not None:
            raise ContainerError(f"systemd-nspawn exited {nspawn.returncode}:\n{log.read_text()}")
        for pid in children(nspawn.pid):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                    return pid
        return None

    return poll("the container's init", init, BOOT_WAIT)


def _stop(nspawn: subprocess.Popen[bytes], init: int | None, pidns: str | None) -> list[str]:
    """Power the container off (SIGTERM, then SIGKILL); what is left behind, if anything."""
    if nspawn.poll() is None:
        nspawn.send_signal(signal.SIGTERM)
        try:
            nspawn.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            if init is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(init, signal.SIGKILL)  # kills the whole PID namespace
            nspawn.kill()
            nspawn.wait(STOP_WAIT)
    if pidns is None:
        return []
    try:
        poll("the container's processes to go", lambda: not in_namespace(pidns), STOP_WAIT)
    except ContainerError:
        return [f"process {pid} of the container" for pid in in_namespace(pidns)]
    return []


@contextlib.contextmanager
def booted(
    rootfs: Path,
    work: Path,
    *,
    binds: Sequence[tuple[Path, str]] = (),
    network: bool = False,
) -> Iterator[Container]:
    """Boot ``rootfs`` (read-only lower layer) with an overlay in ``work``; ``binds`` are
    (host path, container path) pairs mounted read-only. Without ``network`` the
    container has a network namespace of its own with a loopback alone
    (``--private-network``); with it, it shares the host's. See the module docstring."""
    upper, scratch, root = work / "upper", work / "work", work / "root"
    for directory in (upper, scratch, root):
        directory.mkdir(parents=True)
    log = work / "nspawn.log"
    with open(rootfs.parent / ".lock", "a") as lock:
        # Shared: tests/systemd/rootfs (exclusive) removes no tree while one is booted.
        fcntl.flock(lock, fcntl.LOCK_SH)
        overlay = f"lowerdir={rootfs},upperdir={upper},workdir={scratch}"
        nspawn = None
        init = pidns = None
        leftovers: list[str] = []
        try:
            with open(log, "wb") as out:
                nspawn = subprocess.Popen(
                    # setpriv: SIGTERM (a clean power-off) when the test process dies
                    # without its finalizers (killed): no container outlives its run.
                    # unshare: the overlay is mounted in a mount namespace of nspawn's
                    # own, so it goes with the last process there: never left behind.
                    ["setpriv", "--pdeathsig", "TERM", "--",
                     "unshare", "--mount", "--propagation", "private", "--",
                     "/bin/sh", "-c", _OVERLAY_THEN, "sh", overlay, str(root),
                     "systemd-nspawn", "--keep-unit", "--register=no", "--quiet",
                     f"--machine=smscmd-ci-{os.getpid()}", f"--directory={root}",
                     "--console=passive",
                     *(f"--bind-ro={host}:{inside}" for host, inside in binds),
                     *(() if network else ("--private-network",)), "--boot"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            init = _find_init(nspawn, log)
            pidns = os.readlink(f"/proc/{init}/ns/pid")
            container = Container(init, log)
            # systemctl needs the manager's socket: until it is there, it fails at once.
            poll("the container's systemd", container.path("/run/systemd/private").exists,
                 BOOT_WAIT)  # fmt: skip
            done = container.run(
                ["systemctl", "is-system-running", "--wait"], timeout=BOOT_WAIT, check=False
            )
            if done.stdout.strip() != "running":
                failed = container.run(["systemctl", "--failed", "--no-legend"], check=False)
                raise ContainerError(
                    f"booted {done.stdout.strip()!r}, not 'running' ({done.stderr.strip()}):\n"
                    f"{failed.stdout}"
                )
            yield container
        finally:
            if nspawn is not None:
                leftovers += _stop(nspawn, init, pidns)
            leftovers += [f"mount {point}" for point in mounts_below(root)]
            if leftovers:  # also when the body failed: then both are shown
                raise ContainerError("left behind: " + ", ".join(leftovers))
            subprocess.run(["rm", "-rf", "--one-file-system", str(upper), str(scratch)],
                           check=False, timeout=120)  # fmt: skip
