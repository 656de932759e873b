"""gammu (the Debian package, unchanged) against ``hostsim run``, on the emulated
modem's pty, for each persona.

One gammu process per persona, all personas at once, each on a hostsim of its own,
runs the whole story as a batch (``gammu batch``:
one connection, so gammu's slow start, eight commands written a character at a time
with 0.4 s after each until it knows the model, is paid once): ``identify``,
``getsmsfolders``, ``getallsms`` (shows a command delivered through the API),
``sendsms TEXT 000 -text …`` (comes back out of the API as ``from_sim``),
``monitor 1``, ``deleteallsms``, and ``getallsms`` again (empty). A command that fails
ends gammu's batch (it exits with 100 + its error code): the failure names the step
and the AT commands hostsim refused, from gammu's debug log (``logformat = textall``),
which stays in the test's ``tmp_path``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from clients.support import (
    WAIT,
    evidence,
    gammu_config,
    on_every_persona,
    persona_cloud,
    require_tool,
    run_client,
)

from hostsim.modem.personas import PERSONAS

pytestmark = pytest.mark.clients

COMMAND = "ping: from the cloud to gammu"
REPLY = "pong from gammu"
#: ``deleteallsms`` takes a folder number; 1 is the first inbox ``getsmsfolders`` lists.
STEPS = (
    "identify",
    "getsmsfolders",
    "getallsms",
    f'sendsms TEXT 000 -text "{REPLY}"',
    "monitor 1",
    "deleteallsms 1",
    "getallsms",
)
_SEPARATOR = re.compile(r"^-{20,}\nExecuting batch .* - command (\d+): .*\n", re.MULTILINE)


def sections(output: str) -> list[str]:
    """What each batch step printed, in order (steps after a failed one are missing)."""
    return _SEPARATOR.split(output)[2::2]


def field(section: str, name: str) -> str:
    """The value of gammu's ``Name   : value`` line (empty when there is none)."""
    m = re.search(rf"^{re.escape(name)}\s+: (.*)$", section, re.MULTILINE)
    return m.group(1).strip() if m else ""


@pytest.fixture(scope="module")
def gammu() -> str:
    """In a fixture: a missing client is a skip (or, in CI, an error), never an xfail."""
    return require_tool("gammu")


async def session(tmp: Path, gammu: str, persona: str) -> None:
    """The whole story on a hostsim of its own with ``persona``, in ``tmp``."""
    log = tmp / "gammu.log"
    async with persona_cloud(tmp, persona) as cloud:
        await cloud.deliver(COMMAND)
        config = gammu_config(tmp / "gammurc", cloud.link, log)
        code, output = await run_client(
            [gammu, "-c", str(config), "batch"], stdin="\n".join(STEPS).encode() + b"\n",
            timeout=WAIT,
        )  # fmt: skip
        done = sections(output)
        if code != 0 or len(done) != len(STEPS):
            failed = STEPS[len(done) - 1] if done else "(before the batch)"
            pytest.fail(evidence(f"gammu exited {code} at `{failed}`:\n{output}", log))
        identify, folders, listed, sent, monitor, _, relisted = done
        module = PERSONAS[persona]
        assert field(identify, "Manufacturer") == module.manufacturer, evidence(identify, log)
        assert field(identify, "IMEI") == module.imei, evidence(identify, log)
        assert field(identify, "SIM IMSI") == module.imsi, evidence(identify, log)
        assert "Inbox" in folders, evidence(folders, log)
        assert COMMAND in listed, evidence(listed, log)
        assert "OK, message reference" in sent, evidence(sent, log)
        assert await cloud.from_sim() == REPLY
        assert field(monitor, "Signal strength").endswith("dBm"), evidence(monitor, log)
        assert field(monitor, "Network state").endswith("network"), evidence(monitor, log)
        assert COMMAND not in relisted, evidence(relisted, log)


@pytest.mark.timeout(60)
@pytest.mark.async_timeout(50)
async def test_gammu_on_every_persona(tmp_path: Path, gammu: str) -> None:
    """Every persona at once, each on its own hostsim: gammu spends most of its ~4 s
    waiting (its slow start, ``monitor``'s pauses), so one after the other would cost
    five times that."""
    await on_every_persona(tmp_path, lambda tmp, persona: session(tmp, gammu, persona))
