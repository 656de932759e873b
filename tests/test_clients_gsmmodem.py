"""python-gsmmodem-new 0.13 (PyPI, unchanged, in its own virtual environment
``.venv-clients``) against ``hostsim run``, on the emulated modem's pty.

The library runs in a subprocess, ``tests/clients/gsmmodem_driver.py`` (JSON lines
out, one per step): ``connect()``, ``networkName``, ``signalStrength``,
``sendSms('000', …)`` (comes back out of the API as ``from_sim``, and its status
report says delivered), the receive
callback for commands delivered through the API, ``listStoredSms()``; in text mode and
in PDU mode (``smsTextMode``). Its DEBUG log (every AT line) stays in the test's
``tmp_path``; a failure names the commands hostsim refused.

The burst test delivers several commands at once and counts what the callback sees.
python-gsmmodem handles only the first ``+CMTI`` of the lines it reads in one go (and
a ``+CMTI`` that arrives while it waits for an answer becomes part of that answer), so
it sees fewer: the rest stays in the module's storage. That is the client's field bug
which a faithful module reproduces; the test measures it and asserts only that
hostsim lost nothing (callbacks + stored = delivered).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from clients.support import (
    REPO,
    WAIT,
    evidence,
    on_every_persona,
    persona_cloud,
    require_gsmmodem,
)

pytestmark = pytest.mark.clients

DRIVER = REPO / "tests" / "clients" / "gsmmodem_driver.py"
COMMAND = "ping: from the cloud to python-gsmmodem"
REPLY = "pong from python-gsmmodem"
BURST = 5


@pytest.fixture(scope="module")
def python() -> Path:
    """In a fixture: a missing client is a skip (or, in CI, an error), never an xfail."""
    return require_gsmmodem()


async def drive(
    tmp: Path, python: Path, persona: str, mode: str, payloads: list[str]
) -> dict[str, Any]:
    """Run the driver on a fresh hostsim, deliver ``payloads`` once it is ready: its
    steps by name, with the log's path (``log``), its exit status (``code``), its stderr
    (``stderr``) and the from_sim command its ``sendSms`` made (``from_sim``)."""
    log = tmp / "gsmmodem.log"
    steps: dict[str, Any] = {"log": log}
    stderr = tmp / "driver-stderr.log"
    async with persona_cloud(tmp, persona) as cloud:
        with stderr.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                str(python), str(DRIVER), cloud.link, mode, str(log),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
            )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        try:
            async with asyncio.timeout(WAIT):
                while line := await proc.stdout.readline():
                    step = json.loads(line)
                    steps[step.pop("step")] = step
                    if "ready" in steps and "expect" not in steps:
                        await cloud.deliver(*payloads)
                        steps["expect"] = len(payloads)
                        proc.stdin.write(json.dumps({"expect": len(payloads)}).encode() + b"\n")
                        await proc.stdin.drain()
                code = await proc.wait()
        except json.JSONDecodeError:
            rest = await proc.stdout.read()
            pytest.fail(evidence(f"driver failed:\n{line.decode()}{rest.decode()}", log))
        except TimeoutError:
            pytest.fail(evidence(f"driver not done within {WAIT} s: {steps}", log))
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        steps["code"] = code
        steps["stderr"] = stderr.read_text(errors="replace")
        if "sendSms" in steps and "error" not in steps["sendSms"]:
            steps["from_sim"] = await cloud.from_sim()
    return steps


def value(steps: dict[str, Any], name: str) -> Any:
    """The value of step ``name``; a failure with the client's error and log otherwise."""
    step = steps.get(name)
    if step is None or "error" in step:
        pytest.fail(evidence(f"{name}: {step or 'not reached'} (steps: {steps})", steps["log"]))
    return step["value"]


async def session(tmp: Path, python: Path, persona: str, mode: str) -> None:
    """One command each way, in ``mode``, on a hostsim of its own with ``persona``."""
    steps = await drive(tmp, python, persona, mode, [COMMAND])
    assert value(steps, "connect")
    assert value(steps, "networkName")
    assert 0 <= value(steps, "signalStrength") <= 31, steps
    assert value(steps, "sendSms")["status"] == "delivered", steps
    assert steps["from_sim"] == f"{REPLY} ({mode})"
    assert value(steps, "received") == [COMMAND], evidence(str(steps), steps["log"])
    assert value(steps, "listStoredSms") == [], evidence(str(steps), steps["log"])
    assert "Traceback" not in steps["stderr"], evidence(steps["stderr"], steps["log"])
    assert steps["code"] == 0


@pytest.mark.timeout(60)
@pytest.mark.async_timeout(50)
async def test_gsmmodem_text_mode_on_every_persona(tmp_path: Path, python: Path) -> None:
    """Every persona at once, each on its own hostsim (the library mostly waits)."""
    await on_every_persona(tmp_path, lambda tmp, persona: session(tmp, python, persona, "text"))


@pytest.mark.timeout(60)
@pytest.mark.async_timeout(50)
async def test_gsmmodem_pdu_mode(tmp_path: Path, python: Path) -> None:
    """PDU mode on the default persona (the text-mode test covers the others: the
    library's PDU codec does not depend on the module)."""
    await session(tmp_path, python, "quectel-bg96", "pdu")


@pytest.mark.timeout(60)
@pytest.mark.async_timeout(50)
async def test_gsmmodem_burst(tmp_path: Path, python: Path, record_property: Any) -> None:
    burst = [f"ping: burst {n}" for n in range(BURST)]
    steps = await drive(tmp_path, python, "quectel-bg96", "text", burst)
    seen, stored = value(steps, "received"), value(steps, "listStoredSms")
    raised = steps["stderr"].count("Traceback")
    print(
        f"python-gsmmodem burst of {BURST}: {len(seen)} callbacks, {len(stored)} left in"
        f" storage, {raised} exceptions in the library's notification threads"
    )
    record_property("gsmmodem_burst_callbacks", len(seen))
    assert sorted(seen + stored) == sorted(burst), evidence(str(steps), steps["log"])
